"""A runnable request per kind for `POST /v1/jobs`: the examples of /docs (Swagger UI's dropdown)
and /redoc. Each is the spec model's own example, small enough to run in seconds on a CPU."""

from typing import Any

from schemas.convex import CONVEX_EXAMPLE
from schemas.experiments import KERNEL_EXAMPLE, TRAIN_EXAMPLE
from schemas.landscape import LANDSCAPE_EXAMPLE
from schemas.ode import ODE_EXAMPLE
from schemas.sweep import SWEEP_EXAMPLE


def request(summary: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI example (summary, value) of a request body with this spec."""
    return {"summary": summary, "value": {"spec": spec}}


SPEC_EXAMPLES: dict[str, dict[str, Any]] = {
    "kernel": request(
        "kernel: the NTK of a two-layer ReLU net, analytic and at three widths", KERNEL_EXAMPLE
    ),
    "train": request("train: GD, heavy ball and Nesterov on one wide network", TRAIN_EXAMPLE),
    "ode": request(
        "ode: function-space ODEs of GD, heavy ball and Nesterov, exact and integrated", ODE_EXAMPLE
    ),
    "landscape": request(
        "landscape: critical points of a 4-neuron teacher-student problem", LANDSCAPE_EXAMPLE
    ),
    "convex": request("convex: the convex program of a ReLU net beside GD and heavy ball", CONVEX_EXAMPLE),
    "sweep": request("sweep: heavy ball's rate at three widths", SWEEP_EXAMPLE),
}
"""Per kind: the example's summary and the request body (`{"spec": ...}`, defaults elsewhere)."""
