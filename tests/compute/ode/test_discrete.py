"""Discrete methods against their ODE, and finite networks against the H_inf flow
(workers.compute.ode.discrete, .parameter_space).

A researcher asks how far gradient descent and the momentum methods are from their continuous-time
limit and expects: the gap to close as the step shrinks, at the order their time step predicts
(lr for GD, sqrt(lr) for the momentum methods); and the flow of finite networks on their weights to
approach the H_inf flow like m^-1/2. CPU, float64.
"""

import math

import numpy as np
import pytest

from workers.compute.ode.experiment import run_ode

from .helpers import quiet, small_spec

# ---------------------------------------------------------------------------------------------
# discrete against continuous, and finite networks against H_inf
# ---------------------------------------------------------------------------------------------


def test_discrete_methods_approach_their_ode_at_the_order_of_their_time_step() -> None:
    """GD is Euler's method on e' = -K e: gap ~ lr. The momentum methods advance sqrt(lr) in
    ODE time per step and are first order in it: gap ~ sqrt(lr)."""
    spec = small_spec(
        dynamics=[{"name": "gd_flow"}, {"name": "heavy_ball"}, {"name": "nesterov"}, {"name": "nesterov_sc"}],
        grid={"t_max": 20.0, "points": 64, "spacing": "linear"},
        integrator=None,
        discrete={"lrs": [0.1, 0.03, 0.01, 0.003]},
    )
    result = run_ode(spec, quiet)
    for dynamics in result.dynamics:
        study = dynamics.discrete
        assert study is not None
        gaps = [row.gap for row in study.rows]
        assert np.all(np.diff(gaps) < 0), gaps
        assert study.order == pytest.approx(study.expected_order, abs=0.08), dynamics.name
    gd, heavy_ball = result.dynamics[:2]
    for row in gd.discrete.rows:
        # e_k at t_k = k lr; the grid's nearest point is at most half a step of ODE time away, where
        # |e'| = |K e| <= lambda_max |e0|: | |e_k| - |e(t)| | <= (gap + lambda_max |t_k - t|) |e0|
        grid, exact = np.array(result.t), np.array(gd.residual_norm)
        nearest = np.abs(grid[None, :] - np.array(row.times)[:, None]).argmin(axis=1)
        steps = np.array(row.times) / row.time_per_step
        assert np.allclose(steps, np.round(steps), rtol=0, atol=1e-9)
        assert row.residual_norm[0] == pytest.approx(exact[0], rel=1e-14)  # both |e0|, to rounding
        bound = (row.gap + result.lambda_max * np.abs(np.array(row.times) - grid[nearest])) * exact[0]
        assert np.all(np.abs(np.array(row.residual_norm) - exact[nearest]) <= bound * (1 + 1e-9))
    assert gd.discrete.rows[0].lr == pytest.approx(0.1 / 1.5306000789490666, rel=1e-12)
    assert gd.discrete.rows[0].time_per_step == gd.discrete.rows[0].lr
    row = heavy_ball.discrete.rows[0]
    assert row.momentum == pytest.approx(1 - heavy_ball.parameters["gamma"] * math.sqrt(row.lr), rel=1e-12)


def test_finite_networks_approach_the_h_inf_flow_like_one_over_sqrt_width() -> None:
    """Gradient and heavy-ball flow of two-layer ReLU nets on their weights, against the H_inf
    flow from the same e(0): the gap shrinks with m, about like m^-1/2 (measured -0.42 to -0.53
    over three datasets at these widths)."""
    spec = small_spec(
        dynamics=[{"name": "gd_flow"}],
        grid={"t_max": 4.0, "points": 8, "spacing": "linear"},
        integrator=None,
        parameter_space={
            "widths": [25, 100, 400, 1600],
            "replicates": 2,
            "dynamics": ["gd_flow", "heavy_ball"],
            "t_max": 4.0,
        },
    )
    studies = run_ode(spec, quiet).parameter_space
    assert studies is not None and [study.dynamics for study in studies] == ["gd_flow", "heavy_ball"]
    for study in studies:
        gaps = [row.gap_mean for row in study.rows]
        assert np.all(np.diff(gaps) < 0), gaps
        assert -0.75 < study.width_exponent < -0.25
        assert gaps[-1] < 0.05
