"""Mapping a spec's device name to a torch device."""

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
