"""The `ode` experiment: continuous-time limits of GD, heavy ball and Nesterov in function space.

A researcher asks for the ODEs of SCIENCE.md section 1 under a kernel and expects: each mode's
exact solution to be the textbook closed form in every regime (under-, critically and
over-damped heavy ball, Nesterov's Bessel solution for any r/t) and to agree with a careful
integration; the integrator run by the service to agree with it to float64 precision; Nesterov's
loss to fall like t^-3 (sublinear) and critically damped heavy ball's residual like
exp(-sqrt(lambda_min) t) (linear); the discrete methods to approach their ODE as the step shrinks,
at the order their time step predicts; finite networks to approach the H_inf flow as m^-1/2;
and bad requests refused with the field that is wrong. CPU, float64 unless a test says otherwise.
"""

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from scipy import special
from scipy.integrate import solve_ivp

from schemas import JobRequest, OdeResult, OdeSpec, over_budget
from schemas.datasets import SphereDataset
from schemas.networks import TwoLayerNet
from schemas.ode import IntegratorSpec
from schemas.results import ExperimentResult
from workers.celery_app import queue_for
from workers.compute import run_experiment
from workers.compute.datasets import make_data
from workers.compute.kernels.analytic import analytic_kernel
from workers.compute.ode.experiment import run_ode
from workers.compute.ode.flows import (
    Flow,
    bessel_modes,
    damped_modes,
    exact_on,
    gradient_flow_modes,
    integrate,
    mode_factors,
    normalized_bessel,
)
from workers.compute.spectrum import eigendecompose

F64 = torch.float64
EXAMPLE = Path(__file__).parent.parent / "examples" / "ode_momentum.json"
SMALL = {"name": "sphere", "n": 16, "d": 5, "seed": 0}  # lambda_min 0.0708, lambda_max 1.531


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These problems are small (n = 16): one intra-op thread is as fast as two on an idle
    machine, and on a loaded one it avoids threads waiting for a descheduled partner (measured
    10x slower with two). The answers do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quiet(_fraction: float, _message: str) -> None:
    """A progress callback that ignores everything."""


def reference(acceleration: Callable[[float, float, float], float], t: np.ndarray) -> np.ndarray:
    """phi on t from phi(0) = 1, phi'(0) = 0 by scipy's DOP853 at rtol 1e-13: an integrator
    independent of the service's (torchdiffeq) and of its closed forms."""
    solution = solve_ivp(
        lambda s, state: [state[1], acceleration(s, state[0], state[1])],
        (0.0, float(t[-1])),
        [1.0, 0.0],
        t_eval=t,
        method="DOP853",
        rtol=1e-13,
        atol=1e-15,
    )
    return solution.y[0]


def modes(
    compute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], lam: float, t: np.ndarray
) -> np.ndarray:
    return compute(torch.tensor([lam], dtype=F64), torch.from_numpy(t))[:, 0].numpy()


def small_spec(**fields: Any) -> OdeSpec:
    return OdeSpec.model_validate({"kind": "ode", "dataset": SMALL, **fields})


# ---------------------------------------------------------------------------------------------
# a) each mode's exact solution against closed forms and a careful integration
# ---------------------------------------------------------------------------------------------

T = np.linspace(0.0, 40.0, 401)


def under_damped(lam: float, gamma: float) -> np.ndarray:
    w = math.sqrt(lam - gamma**2 / 4)
    return np.exp(-gamma * T / 2) * (np.cos(w * T) + gamma / (2 * w) * np.sin(w * T))


def over_damped(lam: float, gamma: float) -> np.ndarray:
    root = math.sqrt(gamma**2 - 4 * lam)
    r1, r2 = (-gamma + root) / 2, (-gamma - root) / 2
    return (r2 * np.exp(r1 * T) - r1 * np.exp(r2 * T)) / (r2 - r1)


def critical(lam: float, gamma: float) -> np.ndarray:
    return np.exp(-gamma * T / 2) * (1 + gamma * T / 2)


@pytest.mark.parametrize(
    ("lam", "gamma", "closed_form"),
    [(4.0, 1.0, under_damped), (1.0, 2.0, critical), (1.0, 5.0, over_damped), (0.01, 30.0, over_damped)],
    ids=["under", "critical", "over", "very_over"],
)
def test_heavy_ball_modes_are_the_textbook_solutions(
    lam: float, gamma: float, closed_form: Callable[[float, float], np.ndarray]
) -> None:
    phi = modes(lambda lam_, t: damped_modes(lam_, t, gamma), lam, T)
    np.testing.assert_allclose(phi, closed_form(lam, gamma), rtol=0, atol=1e-13)
    careful = reference(lambda _s, e, v: -gamma * v - lam * e, T)
    np.testing.assert_allclose(phi, careful, rtol=0, atol=1e-11)


@pytest.mark.parametrize("offset", [-1e-6, -1e-12, 0.0, 1e-12, 1e-6])
def test_heavy_ball_is_continuous_through_critical_damping(offset: float) -> None:
    """The root form (r2 e^{r1 t} - r1 e^{r2 t})/(r2 - r1) cancels to nothing here; ours does not."""
    lam, gamma = 1.0 + offset, 2.0
    phi = modes(lambda lam_, t: damped_modes(lam_, t, gamma), lam, T)
    np.testing.assert_allclose(phi, reference(lambda _s, e, v: -gamma * v - lam * e, T), rtol=0, atol=1e-11)
    np.testing.assert_allclose(phi, critical(1.0, gamma), rtol=0, atol=2 * abs(offset) * T[-1] ** 2 + 1e-15)


def test_gradient_flow_modes_and_modes_without_force() -> None:
    """exp(-lambda t); a mode with lambda = 0 (or a negative round-off eigenvalue of a PSD
    kernel, clamped to 0) starts at rest and stays: phi = 1 under every dynamics."""
    t = torch.from_numpy(T)
    np.testing.assert_allclose(modes(gradient_flow_modes, 0.3, T), np.exp(-0.3 * T), rtol=1e-15)
    lam = torch.tensor([0.0, -1e-17], dtype=F64)
    for flow in (Flow("gd_flow", 1), Flow("heavy_ball", 2, gamma=0.7), Flow("nesterov", 2, r=3.0)):
        torch.testing.assert_close(
            mode_factors(flow, lam, t), torch.ones(len(T), 2, dtype=F64), rtol=0, atol=1e-15
        )


def test_nesterov_mode_is_two_j1_over_z() -> None:
    """r = 3: phi = 2 J_1(z)/z, z = sqrt(lambda) t (Su, Boyd, Candes 2016)."""
    lam = 2.0
    z = math.sqrt(lam) * T[1:]
    phi = modes(lambda lam_, t: bessel_modes(lam_, t, 3.0), lam, T)
    assert phi[0] == 1.0
    np.testing.assert_allclose(phi[1:], 2 * special.j1(z) / z, rtol=0, atol=1e-15)


@pytest.mark.parametrize("r", [0.5, 1.0, 3.0, 5.0, 20.0])
def test_bessel_solution_of_r_over_t_damping_matches_a_careful_integration(r: float) -> None:
    lam = 2.0

    def acceleration(s: float, e: float, v: float) -> float:
        return -lam * e - r / s * v if s > 0 else -lam * e / (1 + r)  # the limit at the singular start

    phi = modes(lambda lam_, t: bessel_modes(lam_, t, r), lam, T)
    np.testing.assert_allclose(phi, reference(acceleration, T), rtol=0, atol=1e-11)


@pytest.mark.parametrize("nu", [-0.25, 0.0, 1.0, 9.5])
def test_bessel_series_and_closed_form_meet(nu: float) -> None:
    """Below z = 2 the series is used, above it scipy's J_nu: on [1.5, 2.5] both must agree."""
    z = np.linspace(1.5, 2.5, 11)
    closed = special.gamma(nu + 1) * (2 / z) ** nu * special.jv(nu, z)
    np.testing.assert_allclose(normalized_bessel(nu, z), closed, rtol=1e-14, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# b) exact against integrated, through K itself
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_kernel() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = make_data(SphereDataset(**SMALL), F64, torch.device("cpu"))
    K = analytic_kernel(TwoLayerNet(), data.X)
    lam, V = eigendecompose(K)
    return K, lam, V, -data.y


FLOWS = {
    "gd_flow": Flow("gd_flow", 1),
    "under": Flow("heavy_ball", 2, gamma=0.3),
    "critical": Flow("heavy_ball", 2, gamma=2 * math.sqrt(0.07082645644640874)),
    "over": Flow("heavy_ball", 2, gamma=4.0),
    "nesterov": Flow("nesterov", 2, r=3.0),
    "nesterov_r5": Flow("nesterov", 2, r=5.0),
}


@pytest.mark.parametrize("flow", FLOWS.values(), ids=FLOWS.keys())
@pytest.mark.parametrize(
    ("method", "tolerance"),
    [
        (IntegratorSpec(method="dopri5", rtol=1e-11, atol=1e-13), 1e-9),
        (IntegratorSpec(method="dopri8", rtol=1e-11, atol=1e-13), 1e-9),
        (IntegratorSpec(method="rk4", step_size=0.01), 1e-8),
    ],
    ids=["dopri5", "dopri8", "rk4"],
)
def test_integrator_agrees_with_the_exact_solution(
    small_kernel: tuple[torch.Tensor, ...], flow: Flow, method: IntegratorSpec, tolerance: float
) -> None:
    K, lam, V, e0 = small_kernel
    t = torch.linspace(0.0, 20.0, 41, dtype=F64)
    integrated, evaluations = integrate(flow, K, e0, t, method)
    assert evaluations > 0
    gap = float((integrated - exact_on(lam, V, flow, e0, t)).norm(dim=1).max() / e0.norm())
    assert gap < tolerance


def test_float32_agrees_to_its_precision() -> None:
    spec = small_spec(
        grid={"t_max": 20.0, "points": 41, "spacing": "linear"},
        dtype="float32",
        integrator={"rtol": 1e-6, "atol": 1e-8},
    )
    result = run_ode(spec, quiet)
    assert result.dtype == "float32"
    for dynamics in result.dynamics:
        assert dynamics.integrated is not None and dynamics.integrated.relative_difference < 1e-4


def test_empirical_kernel_at_init_starts_from_the_network_output() -> None:
    """kernel = empirical_init: the NTK of one seeded network (any activation, tanh included)
    and e(0) = f(x; theta_0) - y; the linearised net's flow, exact and integrated alike."""
    spec = small_spec(
        network={"name": "two_layer", "activation": "tanh", "trained": "both"},
        kernel="empirical_init",
        width=512,
        grid={"t_max": 10.0, "points": 21, "spacing": "linear"},
        dynamics=[{"name": "gd_flow"}, {"name": "nesterov"}],
    )
    result = run_ode(spec, quiet)
    assert result.kernel.startswith("empirical NTK at init (width 512, seed 0)")
    data = make_data(SphereDataset(**SMALL), F64, torch.device("cpu"))
    assert result.initial_loss != pytest.approx(0.5 * float(data.y @ data.y), rel=1e-3)  # f(theta_0) != 0
    for dynamics in result.dynamics:
        assert dynamics.integrated is not None and dynamics.integrated.relative_difference < 1e-8
    same = run_ode(spec, quiet)
    assert same.dynamics[0].loss == result.dynamics[0].loss  # seeded


# ---------------------------------------------------------------------------------------------
# c) rates in continuous time, by the rate module
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


# ---------------------------------------------------------------------------------------------
# d) discrete against continuous, and finite networks against H_inf
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
    for dynamics in run_ode(spec, quiet).dynamics:
        study = dynamics.discrete
        assert study is not None
        gaps = [row.gap for row in study.rows]
        assert np.all(np.diff(gaps) < 0), gaps
        assert study.order == pytest.approx(study.expected_order, abs=0.08), dynamics.name
    gd, heavy_ball = run_ode(spec, quiet).dynamics[:2]
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


# ---------------------------------------------------------------------------------------------
# e) requests: refused with the field that is wrong, over budget, and run end to end
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
