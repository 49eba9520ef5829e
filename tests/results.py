"""Real result documents of every kind, small enough to compute in a second or two each: the
science run in-process on small specs (a sweep's table is assembled by the API from its
children, so its document is written here, validated by its model). Cached per test session."""

import functools
from typing import Any

from schemas import JobRequest
from schemas.sweep import SweepResult

SPECS: dict[str, dict[str, Any]] = {
    "kernel": {
        "kind": "kernel",
        "dataset": {"name": "sphere", "n": 12, "d": 4, "seed": 0, "labels": {"rule": "relu_teacher", "k": 2}},
        "empirical": {"widths": [64, 256, 1024], "replicates": 2, "seed": 0},
        "return_matrix": True,
    },
    "train": {
        "kind": "train",
        "dataset": {"name": "sphere", "n": 8, "d": 4, "seed": 0, "test_fraction": 0.25},
        "width": 256,
        "optimizers": [{"name": "gd"}, {"name": "heavy_ball"}, {"name": "gd", "lr": 0.1}],
        "replicates": 2,
        "steps": 200,
        "record_points": 24,
    },
    "ode": {
        "kind": "ode",
        "dataset": {"name": "sphere", "n": 8, "d": 4, "seed": 0},
        "dynamics": [{"name": "gd_flow"}, {"name": "heavy_ball"}],
        "grid": {"t_max": 50.0, "points": 32},
        "modes": [0, -1],
        "discrete": {"lrs": [0.1, 0.03, 0.01], "unit": "1/lambda_max"},
        "parameter_space": {"widths": [32, 64], "replicates": 2, "dynamics": ["gd_flow"]},
    },
    "landscape": {
        "kind": "landscape",
        "input_dim": 7,
        "teacher": {"neurons": 7, "weights": "identity"},
        "student_width": 7,
        "starts": 24,
        "seed": 0,
    },
    "convex": {
        "kind": "convex",
        "dataset": {"name": "sphere", "n": 8, "d": 2, "seed": 0, "labels": {"rule": "relu_teacher", "k": 2}},
        "program": {"name": "relu_convex", "patterns": "exact"},
        "beta": 0.01,
        "compare": [{"name": "gd"}, {"name": "heavy_ball", "momentum": 0.9}],
        "width": 12,
        "replicates": 2,
        "steps": 300,
    },
}

SWEEP = {
    "kind": "sweep",
    "axes": ["network.depth", "width"],
    "metrics": ["test_mse", "losses"],
    "rows": [
        {
            "values": {"network.depth": depth, "width": width},
            "baseline": None,
            "job": f"{depth}{width:031d}",
            "status": "succeeded",
            "cached": False,
            "metrics": {"test_mse": 1.0 / (depth * width), "losses": [1.0, 0.5]},
        }
        for depth in (2, 3)
        for width in (8, 64)
    ]
    + [
        {
            "values": {},
            "baseline": "ntk regression",
            "job": "b" * 32,
            "status": "failed",
            "cached": True,
            "metrics": {"test_mse": None, "losses": None},
        }
    ],
    "counts": {"succeeded": 4, "failed": 1},
    "trends": [],
}


@functools.cache
def real_result(kind: str) -> dict[str, Any]:
    """The JSON document of a `kind` job, as the worker stores it."""
    if kind == "sweep":
        return SweepResult.model_validate(SWEEP).model_dump(mode="json")
    from workers.compute import run_experiment

    spec = JobRequest.model_validate({"spec": SPECS[kind]}).spec
    return run_experiment(spec).model_dump(mode="json")


KINDS = (*SPECS, "sweep")
