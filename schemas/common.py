"""Base models shared by every spec and result."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SEED_MAX = 2**63 - 1

Device = Literal["cpu", "cuda"]
"""Where a worker computes; `cuda` jobs go to the gpu queue."""

Verdict = Literal["linear", "sublinear", "undetermined"]
"""How a loss trajectory converges: exponentially, as a power law, or not decided."""


class SpecModel(BaseModel):
    """A request model: unknown fields are rejected, types are strict ("32" is not an int) and
    NaN/inf never validate."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)


class ResultModel(BaseModel):
    """A result model: what workers write and clients read back; NaN/inf never validate (they
    are not JSON), so a numerical breakdown fails the job instead of storing garbage."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def seed_field(description: str = "seed of the random generator; equal seeds give equal data") -> int:
    """A seed field with bounds that fit a torch.Generator."""
    return Field(0, ge=0, le=SEED_MAX, description=description)


def device_field() -> Device:
    """A device field: cpu unless the job asks for the gpu queue."""
    return Field("cpu", description="where the worker computes; `cuda` goes to the gpu queue")


def validation_summary(error: ValidationError, limit: int = 3) -> str:
    """`field.path: reason` of the first `limit` errors, one line (never the echoed input)."""
    items = error.errors(include_input=False, include_url=False)
    lines = [
        f"{'.'.join(str(part) for part in item['loc']) or '(top)'}: {item['msg']}" for item in items[:limit]
    ]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(lines) + more
