"""Memory of the GPUs a worker can use, read through NVML (the NVIDIA driver's management
library, what `nvidia-smi` shows), which never creates a CUDA context: the worker's parent
process may read it without breaking its forked pool children.

The GPUs are those CUDA would give the worker: every device NVML sees, or the entries of
CUDA_VISIBLE_DEVICES in order (an index, or a UUID or a unique prefix of one, as CUDA takes
them; CUDA ignores everything from the first entry it cannot match, and so does this). MIG
instances are not read.
"""

import os
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import pynvml


@dataclass(frozen=True)
class GpuMemory:
    """One device as NVML reports it: `used` and `total` bytes of its memory, every process's."""

    index: int
    """Position among the worker's visible devices: `cuda:<index>` in its jobs."""
    uuid: str
    name: str
    used: int
    total: int


@cache
def _initialised() -> bool:
    """Load and initialise NVML once per process; False without an NVIDIA driver."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    return True


def _handles(visible: str | None) -> list[Any]:
    """NVML handles of the devices CUDA_VISIBLE_DEVICES = `visible` leaves (all when None), in
    CUDA's order."""
    count = pynvml.nvmlDeviceGetCount()
    every = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    if visible is None:
        return every
    uuids = [pynvml.nvmlDeviceGetUUID(handle) for handle in every]
    chosen = []
    for entry in (entry.strip() for entry in visible.split(",")):
        if entry.isdigit():
            matches = [int(entry)] if int(entry) < count else []
        else:
            matches = [i for i, uuid in enumerate(uuids) if entry and uuid.startswith(entry)]
        if len(matches) != 1:
            break
        chosen.append(every[matches[0]])
    return chosen


def gpu_memory() -> list[GpuMemory]:
    """Used and total memory of each device this worker's CUDA would see; empty without NVML
    (no driver) or without devices."""
    if not _initialised():
        return []
    try:
        handles = _handles(os.environ.get("CUDA_VISIBLE_DEVICES"))
        return [
            GpuMemory(
                index=index,
                uuid=pynvml.nvmlDeviceGetUUID(handle),
                name=pynvml.nvmlDeviceGetName(handle),
                used=int(info.used),
                total=int(info.total),
            )
            for index, handle in enumerate(handles)
            for info in [pynvml.nvmlDeviceGetMemoryInfo(handle)]
        ]
    except pynvml.NVMLError:
        return []


def gpu_fields() -> dict[str, Any]:
    """A GPU worker's heartbeat fields: `gpus`, `gpu_memory()` as plain dicts."""
    return {"gpus": [asdict(gpu) for gpu in gpu_memory()]}
