"""The `ode` experiment (workers.compute.ode.experiment) as the service runs it.

A researcher submits an ode job and expects: bad requests refused with the field that is wrong;
the budget to count the discrete steps and the queue to follow the device; uncomputable steps and
cancels to stop the job with a reason; the example to run end to end through the registry; and a
real network to follow the ODE up to its width. CPU, float64.
"""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import JobRequest, OdeResult, OdeSpec, over_budget
from schemas.datasets import SphereDataset
from schemas.ode import IntegratorSpec
from schemas.results import ExperimentResult
from workers.celery_app import queue_for
from workers.compute import run_experiment
from workers.compute.ode.experiment import run_ode

from .helpers import SMALL, quiet, small_spec

EXAMPLE = Path(__file__).parents[3] / "examples" / "ode_momentum.json"


# ---------------------------------------------------------------------------------------------
# requests: refused with the field that is wrong, over budget, and run end to end
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"grid": {"t_max": -1.0}}, "greater than 0"),
        ({"grid": {"points": 0}}, "greater than or equal to 8"),
        ({"grid": {"spacing": "linear", "t_min": 0.1}}, "log grid only"),
        ({"grid": {"t_max": 10.0, "t_min": 10.0}}, "below t_max"),
        ({"dynamics": [{"name": "heavy_ball", "gamma": 0.0}]}, "greater than 0"),
        ({"dynamics": [{"name": "heavy_ball", "gamma": -1.0}]}, "greater than 0"),
        ({"dynamics": [{"name": "heavy_ball", "lr": 0.01, "momentum": 1.0}]}, "less than 1"),
        ({"dynamics": [{"name": "heavy_ball", "lr": 0.01}]}, "lr and momentum together"),
        ({"dynamics": [{"name": "heavy_ball", "gamma": 1.0, "lr": 0.01, "momentum": 0.9}]}, "not both"),
        ({"dynamics": [{"name": "nesterov", "r": 0.0}]}, "greater than 0"),
        ({"dynamics": [{"name": "nesterov_sc", "mu": -0.1}]}, "greater than 0"),
        ({"dynamics": [{"name": "adam"}]}, "does not match any of the expected tags"),
        ({"dynamics": []}, "at least 1 item"),
        ({"integrator": {"method": "rk4"}}, "needs a step_size"),
        ({"integrator": {"method": "dopri5", "step_size": 0.1}}, "chooses its own steps"),
        ({"dtype": "float32", "integrator": {"rtol": 1e-9}}, "rtol must be at least 1e-6"),
        ({"modes": [16]}, "outside the spectrum of 16"),
        ({"kernel": "empirical_init"}, "give a width"),
        ({"width": 64}, "give a width"),
        ({"network": {"name": "two_layer", "activation": "tanh"}}, "no H_inf"),
        ({"network": {"name": "two_layer", "parameterization": "standard"}}, "ntk parameterization"),
        ({"discrete": {"lrs": [0.1]}}, "at least 2 items"),
        ({"parameter_space": {"widths": [64, 10**6]}}, "less than or equal to 16384"),
        ({"t_max": 10.0}, "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_are_refused_with_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        JobRequest.model_validate({"spec": {"kind": "ode", "dataset": SMALL, **fields}})
    assert raised.value.errors()[0]["loc"][:2] == ("spec", "ode")


def test_budget_counts_the_discrete_steps_and_the_queue_follows_the_device() -> None:
    cheap = small_spec()
    assert 0 < cheap.cost().flops < 1e11
    heavy = OdeSpec.model_validate(
        {
            "kind": "ode",
            "dataset": {"name": "sphere", "n": 4096, "d": 10},
            "grid": {"t_max": 1e4},
            "discrete": {"lrs": [1e-3, 1e-4], "unit": "1/lambda_max"},
        }
    )
    reason = over_budget(heavy.cost(), max_flops=5e12, max_memory_bytes=4 * 2**30)
    assert reason is not None and "compute budget" in reason
    assert queue_for(cheap.device) == "cpu" and queue_for(small_spec(device="cuda").device) == "gpu"


def test_uncomputable_discrete_steps_fail_with_a_reason() -> None:
    """Heavy ball's momentum 1 - gamma sqrt(lr) must stay >= 0."""
    spec = small_spec(
        dynamics=[{"name": "heavy_ball", "gamma": 2.0}],
        integrator=None,
        discrete={"lrs": [1.0, 0.1], "unit": "absolute"},
    )
    with pytest.raises(ValueError, match="1/gamma"):
        run_ode(spec, quiet)


class Cancelled(Exception):
    """What a worker's progress callback raises when the user cancels."""


def test_long_integrations_report_progress_and_can_be_cancelled() -> None:
    """Progress is heard during an integration, not only between stages, so a cancel (an
    exception from the callback) stops it there."""
    heard: list[str] = []

    def cancel_during_integration(_fraction: float, message: str) -> None:
        heard.append(message)
        if "evaluations" in message:
            raise Cancelled

    spec = small_spec(dynamics=[{"name": "nesterov"}], grid={"t_max": 400.0}, integrator={"rtol": 1e-11})
    with pytest.raises(Cancelled):
        run_ode(spec, cancel_during_integration)
    assert heard[-1] == "nesterov: integrator, 2000 evaluations"


def test_the_example_runs_end_to_end_through_the_registry() -> None:
    """The example's request, shrunk to a quick size, through workers.compute.run_experiment."""
    request = json.loads(EXAMPLE.read_text())
    example = JobRequest.model_validate(request).spec
    assert isinstance(example, OdeSpec)
    spec = example.model_copy(
        update={
            "dataset": SphereDataset(**SMALL),
            "grid": example.grid.model_copy(update={"t_max": 40.0, "points": 64}),
            "parameter_space": example.parameter_space.model_copy(update={"widths": [64, 256], "t_max": 2.0}),
            "integrator": IntegratorSpec(rtol=1e-10, atol=1e-13),
        }
    )
    result = run_experiment(spec, quiet)
    assert isinstance(result, OdeResult)
    again = TypeAdapter(ExperimentResult).validate_json(result.model_dump_json())
    assert again == result
    assert result.t[0] == 0.0 and result.t[-1] == pytest.approx(40.0, rel=1e-12)
    assert [d.name for d in result.dynamics] == [
        "gd_flow",
        "heavy_ball",
        "heavy_ball",
        "nesterov",
        "nesterov_sc",
    ]
    assert result.dynamics[2].parameters["gamma"] == pytest.approx((1 - 0.9) / math.sqrt(0.01), rel=1e-12)
    for dynamics in result.dynamics:
        assert dynamics.integrated is not None and dynamics.integrated.relative_difference < 1e-8
        # the integrated trajectory, drawn beside the exact one: its norm is within the largest gap
        integrated = np.array(dynamics.integrated.residual_norm)
        exact = np.array(dynamics.residual_norm)
        assert integrated.shape == exact.shape and integrated[0] == pytest.approx(exact[0], rel=1e-12)
        assert np.abs(integrated - exact).max() <= dynamics.integrated.max_difference * (1 + 1e-9)
        assert dynamics.loss[0] == pytest.approx(result.initial_loss, rel=1e-12)
        assert len(dynamics.residual_norm) == len(result.t)
        bottom = dynamics.modes[1]
        assert bottom.index == 15 and bottom.eigenvalue == pytest.approx(result.lambda_min, rel=1e-12)
    gd_bottom = result.dynamics[0].modes[1].residual
    np.testing.assert_allclose(
        gd_bottom, gd_bottom[0] * np.exp(-result.lambda_min * np.array(result.t)), rtol=1e-9
    )
    assert result.parameter_space is not None and len(result.parameter_space) == 2


def network_study(width: int) -> OdeResult:
    spec = {
        "kind": "ode",
        "dataset": {"name": "sphere", "n": 16, "d": 4, "seed": 0},
        "grid": {"t_max": 5.0, "points": 16},
        "integrator": None,
        "discrete": {"lrs": [0.4, 0.1, 0.025], "network_width": width},
    }
    result = run_experiment(OdeSpec.model_validate(spec))
    assert isinstance(result, OdeResult)
    return result


def test_the_real_network_follows_the_ode_up_to_its_width() -> None:
    narrow, wide = network_study(1024), network_study(16384)
    for result in (narrow, wide):
        for dynamics in result.dynamics:
            study = dynamics.discrete
            assert study is not None and study.network is not None and "width" in study.network
            assert all(row.network_gap is not None and row.network_gap < 0.2 for row in study.rows)
            if dynamics.name != "gd_flow":  # the momentum methods' gap is their discretisation: ~sqrt(lr)
                assert study.network_order == pytest.approx(0.5, abs=0.1), (dynamics.name, study)
    # GD's discretisation gap (~lr) falls below the finite-width floor, which shrinks with width
    floor = narrow.dynamics[0].discrete.rows[-1].network_gap  # type: ignore[union-attr]
    wide_floor = wide.dynamics[0].discrete.rows[-1].network_gap  # type: ignore[union-attr]
    assert wide_floor < 0.6 * floor
    assert narrow.dynamics[0].discrete.rows[-1].gap < 0.1 * floor  # type: ignore[union-attr]


def test_a_network_needs_the_trainers_nesterov_schedule() -> None:
    spec = {"kind": "ode", "dynamics": [{"name": "nesterov", "r": 5.0}], "discrete": {"network_width": 64}}
    with pytest.raises(ValidationError, match="r = 5"):
        OdeSpec.model_validate(spec)
