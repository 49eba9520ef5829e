"""Compute and memory estimates of a spec, checked against the service's budget before queueing."""

from pydantic import BaseModel

MIB = 2**20
GIB = 2**30
STEP_OVERHEAD = 1e7
"""Flop-equivalent of the Python and dispatch around one training step (~200 us measured)."""


class Cost(BaseModel):
    """Estimated work of one job: floating-point operations and peak bytes held at once."""

    flops: float
    memory_bytes: float


def over_budget(cost: Cost, max_flops: float, max_memory_bytes: float) -> str | None:
    """Why a cost exceeds the budget, naming each limit and by how much; None if it fits."""
    reasons = []
    if cost.memory_bytes > max_memory_bytes:
        reasons.append(
            f"estimated memory {cost.memory_bytes / GIB:.2f} GiB exceeds the memory budget of "
            f"{max_memory_bytes / GIB:.2f} GiB by {(cost.memory_bytes - max_memory_bytes) / GIB:.2f}"
            f" GiB ({cost.memory_bytes / max_memory_bytes:.1f}x)"
        )
    if cost.flops > max_flops:
        reasons.append(
            f"estimated compute {cost.flops:.3g} flop exceeds the compute budget of "
            f"{max_flops:.3g} flop by {cost.flops - max_flops:.3g} flop "
            f"({cost.flops / max_flops:.1f}x)"
        )
    return "; ".join(reasons) or None
