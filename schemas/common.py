"""Base models shared by every spec and result."""

from pydantic import BaseModel, ConfigDict, Field

SEED_MAX = 2**63 - 1


class SpecModel(BaseModel):
    """A request model: unknown fields are rejected and NaN/inf never validate."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ResultModel(BaseModel):
    """A result model: what workers write and clients read back."""

    model_config = ConfigDict(extra="forbid")


def seed_field(description: str = "seed of the random generator; equal seeds give equal data") -> int:
    """A seed field with bounds that fit a torch.Generator."""
    return Field(0, ge=0, le=SEED_MAX, description=description)
