"""Mapping a spec's device name to a torch device, and the CPU threads work runs on."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


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
