"""Continuous-time limits of GD, heavy ball and Nesterov in function space (workers.compute.ode.flows).

A researcher asks for the ODEs of SCIENCE.md section 1 under a kernel and expects: each mode's
exact solution to be the textbook closed form in every regime (under-, critically and over-damped
heavy ball, Nesterov's Bessel solution for any r/t) and to agree with a careful integration; the
integrator run by the service to agree with it to float64 precision (float32 to its own), through
the kernel itself, the analytic one or the empirical NTK of a network at init. CPU, float64 unless
a test says otherwise.
"""

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import special
from scipy.integrate import solve_ivp

from schemas.datasets import SphereDataset
from schemas.networks import TwoLayerNet
from schemas.ode import IntegratorSpec
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

from .helpers import SMALL, quiet, small_spec

F64 = torch.float64


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
