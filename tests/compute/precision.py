"""The precisions a computation is asked to hold: each dtype on each device this machine has.

float64 and float32 on the CPU, and the same on CUDA when this machine has it. Each comes with
the absolute tolerance its dtype can be held to on O(1) numbers; a test whose own bound differs
keeps its number, per dtype.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    device: torch.device
    tolerance: float

    @property
    def id(self) -> str:
        """`float64-cpu`, `float32-cuda`, ..."""
        return f"{str(self.dtype).removeprefix('torch.')}-{self.device.type}"


TOLERANCES = {torch.float64: 1e-10, torch.float32: 1e-4}
DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
PRECISIONS = [
    Precision(dtype, torch.device(device), tolerance)
    for device in DEVICES
    for dtype, tolerance in TOLERANCES.items()
]
