"""The small problem the ode tests run on, and what they pass the experiment."""

from typing import Any

from schemas import OdeSpec

SMALL = {"name": "sphere", "n": 16, "d": 5, "seed": 0}  # lambda_min 0.0708, lambda_max 1.531


def quiet(_fraction: float, _message: str) -> None:
    """A progress callback that ignores everything."""


def small_spec(**fields: Any) -> OdeSpec:
    return OdeSpec.model_validate({"kind": "ode", "dataset": SMALL, **fields})
