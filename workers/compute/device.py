"""Where and in what precision work runs: a spec's device and dtype names as torch objects, the
CPU threads, and wall-clock stage timing that waits for the device."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32}
"""A spec's dtype name -> the torch dtype."""


def resolve_device(name: str) -> torch.device:
    """`cpu` or `cuda`; asking for cuda on a worker without a GPU is the user's error to see."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but this worker has no CUDA device")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (only at stage boundaries, for honest timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run many tiny CPU ops on one thread, then restore the setting: for work made of ops far
    below a millisecond, a second thread only adds waiting (a landscape census measured 7 s on
    one thread and 58-88 s on two of a loaded 2-core machine; bench/RESULTS.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Clock:
    """Wall-clock seconds per stage, the device synchronised at each boundary."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.start = device, time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        """Seconds since the last lap, added to `stage`."""
        synchronize(self.device)
        now = time.perf_counter()
        elapsed, self.start = now - self.start, now
        self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed
        return elapsed
