"""The science, in pure PyTorch: what tasks call, one entry per experiment kind."""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from workers.compute.convex.experiment import run_convex
from workers.compute.kernels.experiment import run_kernel
from workers.compute.landscape.experiment import run_landscape
from workers.compute.ode.experiment import run_ode
from workers.compute.progress import Progress, silent
from workers.compute.training.experiment import run_train

EXPERIMENTS: dict[str, Callable[[Any, Progress], BaseModel]] = {
    "kernel": run_kernel,
    "train": run_train,
    "landscape": run_landscape,
    "ode": run_ode,
    "convex": run_convex,
}


def run_experiment(spec: BaseModel, progress: Progress = silent) -> BaseModel:
    """Run a validated experiment spec; returns its validated result model.

    Raises ValueError with a message for the user when the spec cannot be computed."""
    return EXPERIMENTS[spec.kind](spec, progress)  # type: ignore[attr-defined]


__all__ = ["EXPERIMENTS", "Progress", "run_experiment", "silent"]
