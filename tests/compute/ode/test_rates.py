"""Rates in continuous time (workers.compute.ode.rates), measured by the rate module.

A researcher runs the ODEs long enough to see their rates and expects: Nesterov's loss to fall
like t^-r (t^-3 for the (k-1)/(k+2) schedule), sublinear; critically damped heavy ball's residual
like exp(-sqrt(lambda_min) t) and gradient flow's like exp(-lambda_min t), linear; and the mean
loss to be the sum loss in slower time. CPU, float64.
"""

import math

import numpy as np
import pytest

from workers.compute.ode.experiment import run_ode

from .helpers import quiet, small_spec

# ---------------------------------------------------------------------------------------------
# rates in continuous time, by the rate module
# ---------------------------------------------------------------------------------------------

LAMBDA_MIN = 0.07082645644640874  # of H_inf on SMALL


def test_nesterov_is_sublinear_with_loss_like_t_to_the_minus_r() -> None:
    """Every mode decays like t^(-r/2), so the loss like t^-r: 3 for Nesterov's (k-1)/(k+2)."""
    t_max = 1000 / math.sqrt(LAMBDA_MIN)
    spec = small_spec(
        dynamics=[{"name": "nesterov"}, {"name": "nesterov", "r": 5.0}],
        grid={"t_max": t_max, "points": 256, "spacing": "log"},
        integrator=None,
    )
    result = run_ode(spec, quiet)
    for dynamics, r in zip(result.dynamics, (3.0, 5.0), strict=True):
        assert dynamics.fit.verdict == "sublinear"
        assert dynamics.fit.loss_exponent == pytest.approx(r, rel=0.03)
        assert dynamics.predicted.model == "power" and dynamics.predicted.loss_exponent == r
        assert dynamics.predicted.ratio == pytest.approx(1.0, abs=0.03)
        assert dynamics.integrated is None


def test_critically_damped_heavy_ball_is_linear_at_sqrt_lambda_min() -> None:
    """gamma = 2 sqrt(lambda_0): every mode decays at sqrt(lambda_0) on the residual, the slowest
    one as exp(-sqrt(lambda_0) t)(1 + sqrt(lambda_0) t): the fit of the tail reads a few per cent
    low because of that polynomial factor, never high."""
    spec = small_spec(
        dynamics=[{"name": "heavy_ball"}, {"name": "nesterov_sc"}],
        grid={"t_max": 30 / math.sqrt(LAMBDA_MIN), "points": 256, "spacing": "linear"},
        integrator=None,
    )
    heavy_ball, nesterov_sc = run_ode(spec, quiet).dynamics
    assert heavy_ball.parameters["gamma"] == pytest.approx(2 * math.sqrt(LAMBDA_MIN), rel=1e-12)
    assert heavy_ball.fit.verdict == "linear" and heavy_ball.fit.confidence > 0.9
    assert heavy_ball.predicted.residual_decay == pytest.approx(math.sqrt(LAMBDA_MIN), rel=1e-12)
    assert heavy_ball.fit.residual_decay == pytest.approx(math.sqrt(LAMBDA_MIN), rel=0.06)
    assert 0.94 < heavy_ball.predicted.ratio < 1.0
    assert nesterov_sc.loss == heavy_ball.loss  # damping 2 sqrt(mu), mu = lambda_min: the same ODE


def test_gradient_flow_is_linear_at_lambda_min() -> None:
    spec = small_spec(
        dynamics=[{"name": "gd_flow"}], grid={"t_max": 30 / LAMBDA_MIN, "spacing": "linear"}, integrator=None
    )
    (gd_flow,) = run_ode(spec, quiet).dynamics
    assert gd_flow.fit.verdict == "linear" and gd_flow.fit.confidence > 0.9
    assert gd_flow.fit.residual_decay == pytest.approx(LAMBDA_MIN, rel=0.02)
    assert gd_flow.fit.loss_decay == pytest.approx(2 * LAMBDA_MIN, rel=0.02)


@pytest.mark.parametrize(
    ("dynamics", "power"),
    [({"name": "gd_flow"}, 1.0), ({"name": "heavy_ball"}, 0.5), ({"name": "nesterov"}, 0.5)],
)
def test_mean_loss_is_the_sum_loss_in_slower_time(dynamics: dict[str, str], power: float) -> None:
    """K = H/n for the mean loss: e(t) under it is e(t / n^power) under the sum loss (power 1 for
    e' = -K e, 1/2 for the second-order flows, whose critical damping scales with sqrt(K))."""
    stretch = 16**power
    total = run_ode(
        small_spec(dynamics=[dynamics], grid={"t_max": 16.0, "points": 17, "spacing": "linear"}), quiet
    )
    mean = run_ode(
        small_spec(
            dynamics=[dynamics],
            grid={"t_max": 16.0 * stretch, "points": 17, "spacing": "linear"},
            loss="mean",
        ),
        quiet,
    )
    assert mean.lambda_min == pytest.approx(total.lambda_min / 16, rel=1e-12)
    a, b = total.dynamics[0], mean.dynamics[0]
    np.testing.assert_allclose(b.residual_norm, a.residual_norm, rtol=1e-11)
    np.testing.assert_allclose(np.array(b.loss) * 16, a.loss, rtol=1e-11)
    assert b.integrated is not None and b.integrated.relative_difference < 1e-8
