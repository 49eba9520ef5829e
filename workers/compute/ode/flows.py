"""Limiting ODEs of GD, heavy ball and Nesterov in function space, solved two ways.

The residual e = u - y of a wide net evolves under a fixed PSD kernel K (eigenpairs
lambda_i, u_i) as one of (Bu, Xu, Chen 2021; Su, Boyd, Candes 2016; docs/science.md §1)

    first order:   e' = -K e
    second order:  e'' + c(t) e' + K e = 0,  e'(0) = 0,  c(t) = gamma  or  r / t.

Exact: e(t) = sum_i phi(lambda_i, t) (u_i . e0) u_i, one eigendecomposition and a scalar
closed form phi per mode (`mode_factors`). Integrated: torchdiffeq's odeint on the same
equation with K itself, never its eigenvectors, so the two check each other.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import special
from torchdiffeq import odeint

from schemas.ode import ADAPTIVE, EVALUATIONS_MAX, DynamicsSpec, IntegratorSpec

SERIES_BELOW = 2.0
"""Below this z = sqrt(lambda) t the Bessel solution is summed as its power series (no 0/0)."""
SERIES_TERMS = 24
"""Terms of that series: the k-th is below (z^2/4)^k / (k!)^2 <= 1/(k!)^2, under 1e-40 at k = 24."""
SINH_SERIES_BELOW = 0.5
"""Below this omega t the over-damped sinh(omega t)/(omega t) is taken directly (no cancellation)."""
TICK_EVALUATIONS = 2000
"""An integration reports (and may be cancelled) after every this many evaluations."""

Tick = Callable[[str], None]
"""Reports a long computation's progress in words; may raise to cancel (workers/compute/progress.py)."""


def no_tick(_message: str) -> None:
    """A tick that ignores everything."""


@dataclass(frozen=True)
class Flow:
    """One ODE of the residual, its constants resolved: order 1 (`gamma`, `r` None), order 2
    with constant damping `gamma` or with damping `r / t`."""

    name: str
    order: int
    gamma: float | None = None
    r: float | None = None

    @property
    def equation(self) -> str:
        if self.order == 1:
            return "e' = -K e"
        damping = f"{self.gamma:.6g}" if self.gamma is not None else f"({self.r:.6g}/t)"
        return f"e'' + {damping} e' + K e = 0, e'(0) = 0"

    # -- the discrete method this flow is the limit of (ode/discrete.py, ode/network.py) --

    def time_per_step(self, lr: float) -> float:
        """ODE time of one step: lr for the first-order flow, sqrt(lr) for the second-order ones."""
        return lr if self.order == 1 else math.sqrt(lr)

    def momentum(self, lr: float) -> float | None:
        """beta of heavy ball (1 - gamma sqrt(lr)) or of constant-momentum Nesterov ((1 - sqrt(mu
        lr))/(1 + sqrt(mu lr)), gamma = 2 sqrt(mu)) at this lr; None for GD and the schedule.
        Raises ValueError when lr is too large for the damping (beta < 0)."""
        if self.gamma is None:
            return None
        root = self.gamma * math.sqrt(lr)
        if self.name == "nesterov_sc":  # gamma = 2 sqrt(mu): sqrt(mu lr) = root / 2
            if root > 2.0:
                raise ValueError(f"nesterov_sc: lr = {lr:.4g} exceeds 1/mu; use smaller step sizes")
            return (1.0 - root / 2.0) / (1.0 + root / 2.0)
        if root > 1.0:
            raise ValueError(
                f"heavy_ball: lr = {lr:.4g} gives momentum 1 - gamma sqrt(lr) < 0; use lr <= 1/gamma^2 = "
                f"{1.0 / self.gamma**2:.4g}"
            )
        return 1.0 - root

    def scheduled_momentum(self, k: int) -> float:
        """b_k = (k - 1)/(k + r - 1) for the step from e_k, k >= 1; step 0 is a plain gradient step."""
        return (k - 1) / (k + (self.r or 0.0) - 1) if k > 0 else 0.0

    @property
    def method(self) -> str:
        """The discrete recursion of the residual, in words."""
        return {
            "gd_flow": "gd: e+ = (I - lr K) e",
            "heavy_ball": "heavy ball: e+ = (I - lr K) e + (1 - gamma sqrt(lr)) (e - e-)",
            "nesterov": f"nesterov: e+ = (I - lr K)(e + (k-1)/(k+{self.r or 0:g}-1) (e - e-))",
            "nesterov_sc": "nesterov, constant momentum (1 - sqrt(mu lr))/(1 + sqrt(mu lr))",
        }[self.name]

    def optimizer(self, lr: float) -> tuple[str, dict[str, float | str]]:
        """The training registry's optimizer and hyperparameters whose limit this flow is at lr:
        GD; heavy ball with momentum 1 - gamma sqrt(lr); Nesterov with the (k-1)/(k+2) schedule
        (r = 3); constant-momentum Nesterov for nesterov_sc."""
        if self.name == "gd_flow":
            return "gd", {"lr": lr}
        if self.name == "nesterov":
            return "nesterov", {"lr": lr, "momentum": "schedule"}
        return ("heavy_ball" if self.name == "heavy_ball" else "nesterov"), {
            "lr": lr,
            "momentum": self.momentum(lr) or 0.0,
        }


def critical_damping(lambda_min: float, who: str) -> float:
    """gamma = 2 sqrt(lambda_min): the slowest mode critically damped, every mode decaying at
    sqrt(lambda_min), the best uniform rate (docs/science.md §1)."""
    if not lambda_min > 0:
        raise ValueError(
            f"{who}: lambda_min = {lambda_min:.3g}, the kernel is singular and has no critical damping; "
            "give the damping explicitly"
        )
    return 2.0 * math.sqrt(lambda_min)


def flow_of(dynamics: DynamicsSpec, lambda_min: float) -> tuple[Flow, dict[str, float]]:
    """The flow of a dynamics spec with its constants fixed, and those constants for the result."""
    if dynamics.name == "gd_flow":
        return Flow("gd_flow", 1), {}
    if dynamics.name == "nesterov":
        return Flow("nesterov", 2, r=dynamics.r), {"r": dynamics.r, "nu": (dynamics.r - 1.0) / 2.0}
    if dynamics.name == "nesterov_sc":
        mu = lambda_min if dynamics.mu == "lambda_min" else dynamics.mu
        gamma = critical_damping(mu, "nesterov_sc")
        return Flow("nesterov_sc", 2, gamma=gamma), {"mu": mu, "gamma": gamma}
    if dynamics.lr is not None and dynamics.momentum is not None:
        root = math.sqrt(dynamics.lr)
        gamma = (1.0 - dynamics.momentum) / root
        constants = {"gamma": gamma, "lr": dynamics.lr, "momentum": dynamics.momentum, "time_per_step": root}
        return Flow("heavy_ball", 2, gamma=gamma), constants
    gamma = critical_damping(lambda_min, "heavy_ball") if dynamics.gamma == "critical" else dynamics.gamma
    return Flow("heavy_ball", 2, gamma=gamma), {"gamma": gamma}


# ---------------------------------------------------------------------------------------------
# exact solutions, one scalar mode at a time: phi(lambda, t) with phi(0) = 1, phi'(0) = 0
# ---------------------------------------------------------------------------------------------


def gradient_flow_modes(lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """phi = exp(-lambda t). lam: (n,), t: (T,) -> (T, n)."""
    return torch.exp(-lam[None, :] * t[:, None])


def damped_modes(lam: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """phi'' + gamma phi' + lambda phi = 0, phi(0) = 1, phi'(0) = 0, in every regime:

    phi = exp(-gamma t/2) (cosh(omega t) + (gamma t/2) sinh(omega t)/(omega t)),
    omega^2 = gamma^2/4 - lambda (docs/science.md §1: the root form of the over-damped case is
    this one rewritten). Over-damped (omega^2 > 0) it is evaluated as
    (E+ + E-)/2 + (gamma/(4 omega)) (E+ - E-) with E+ = exp(-t lambda/(gamma/2 + omega)) (the slow
    root, written without cancellation) and E- = exp(-(gamma/2 + omega) t), which never overflows;
    near critical damping (omega t < SINH_SERIES_BELOW) sinh(x)/x is taken directly, exactly 1 at
    omega = 0, the critical solution exp(-gamma t/2)(1 + gamma t/2). Under-damped (omega = i w):
    exp(-gamma t/2)(cos(w t) + (gamma t/2) sin(w t)/(w t)). lam: (n,), t: (T,) -> (T, n)."""
    lam, t = lam[None, :], t[:, None]
    half = gamma / 2.0
    square = half * half - lam  # omega^2, or -w^2
    omega = square.clamp_min(0.0).sqrt()
    plus = torch.exp(-t * lam / (half + omega))
    minus = torch.exp(-(half + omega) * t)
    a = omega * t
    decay = torch.exp(-half * t)
    small = a < SINH_SERIES_BELOW
    near = torch.where(small, a, 0.0)  # sinh(x)/x taken only where x is small: no overflow
    sinhc_near = torch.where(near > 0, torch.sinh(near) / torch.where(near > 0, near, 1.0), 1.0)
    sinhc = torch.where(small, decay * sinhc_near, 0.5 * (plus - minus) / torch.where(small, 1.0, a))
    over = 0.5 * (plus + minus) + half * t * sinhc
    b = (-square).clamp_min(0.0).sqrt() * t
    sinc = torch.where(b > 0, torch.sin(b) / torch.where(b > 0, b, 1.0), 1.0)
    under = decay * (torch.cos(b) + half * t * sinc)
    return torch.where(square >= 0, over, under)


def normalized_bessel(nu: float, z: np.ndarray) -> np.ndarray:
    """g_nu(z) = Gamma(nu + 1) (2/z)^nu J_nu(z), g_nu(0) = 1: the power series
    sum_k (-z^2/4)^k Gamma(nu + 1)/(k! Gamma(nu + k + 1)) below SERIES_BELOW, else the closed
    form with scipy's J_nu (DLMF 10.2.2). nu > -1; z >= 0 (any shape)."""
    z = np.asarray(z, dtype=np.float64)
    quarter = -0.25 * z * z
    term = np.ones_like(z)
    series = np.ones_like(z)
    for k in range(1, SERIES_TERMS + 1):
        term = term * quarter / (k * (nu + k))
        series = series + term
    far = np.maximum(z, SERIES_BELOW)
    closed = np.exp(special.gammaln(nu + 1.0) + nu * np.log(2.0 / far)) * special.jv(nu, far)
    return np.where(z < SERIES_BELOW, series, closed)


def bessel_modes(lam: torch.Tensor, t: torch.Tensor, r: float) -> torch.Tensor:
    """phi'' + (r/t) phi' + lambda phi = 0, regular at t = 0 with phi(0) = 1, phi'(0) = 0:
    phi = Gamma(nu + 1) (2/z)^nu J_nu(z), z = sqrt(lambda) t, nu = (r - 1)/2 (docs/science.md
    §1; r = 3: 2 J_1(z)/z). The other solution, t^-nu Y_nu or t^(1-r), is singular or has
    phi'(0) != 0, so this is the only one. Each mode decays like t^(-r/2). Evaluated in float64
    with scipy on the CPU. lam: (n,), t: (T,) -> (T, n) on lam's device and dtype."""
    z = np.sqrt(lam.detach().cpu().double().numpy())[None, :] * t.detach().cpu().double().numpy()[:, None]
    return torch.from_numpy(normalized_bessel((r - 1.0) / 2.0, z)).to(lam.device, lam.dtype)


def mode_factors(flow: Flow, lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """phi(lambda_i, t_j) of the flow: (T, n). Eigenvalues below 0 are round-off of a PSD
    kernel and count as 0 (such a mode stays where it is)."""
    lam = lam.clamp_min(0.0)
    if flow.order == 1:
        return gradient_flow_modes(lam, t)
    if flow.gamma is not None:
        return damped_modes(lam, t, flow.gamma)
    if flow.r is None:
        raise ValueError(f"{flow.name}: a second-order flow needs a damping gamma or r")
    return bessel_modes(lam, t, flow.r)


# ---------------------------------------------------------------------------------------------
# numerical integration of the same equations, with K itself
# ---------------------------------------------------------------------------------------------

State = torch.Tensor  # (n,) for order 1; (2, n) = (e, e') for order 2


def vector_field(flow: Flow, K: torch.Tensor) -> Callable[[torch.Tensor, State], State]:
    """The right-hand side of the first-order system (e, v = e'). For damping r/t the start is
    singular; at t = 0 the field takes its limit: e'(t)/t -> e''(0) and e''(0) (1 + r) = -K e(0),
    so e''(0) = -K e(0)/(1 + r). The solution is even and smooth in t (a power series in t^2), so
    the integrator starts at t = 0 itself, with neither a cut at some t0 > 0 nor a series start;
    measured, it then meets the Bessel solution as closely as the constant-damping flows meet
    theirs (tests/compute/ode/test_flows.py). Only an explicit method's first stage ever sits at t = 0."""
    if flow.order == 1:
        return lambda _t, e: -(K @ e)

    def second_order(t: torch.Tensor, state: State) -> State:
        e, v = state[0], state[1]
        force = -(K @ e)
        if flow.gamma is not None:
            return torch.stack([v, force - flow.gamma * v])
        r = float(flow.r or 0.0)
        started = t > 0
        damped = force - r / torch.where(started, t, torch.ones_like(t)) * v
        return torch.stack([v, torch.where(started, damped, force / (1.0 + r))])

    return second_order


def solve(
    name: str,
    field: Callable[[torch.Tensor, Any], Any],
    start: Any,
    t: torch.Tensor,
    spec: IntegratorSpec,
    tick: Tick = no_tick,
) -> tuple[Any, int]:
    """torchdiffeq's odeint (Chen et al. 2018) of y' = field(t, y) from y(t_0) = start (a tensor
    or a tuple of tensors) on the increasing times t (T,), with the spec's method and tolerances;
    returns the solution at t (leading dimension T) and the number of field evaluations. Adaptive
    methods are made to step onto every time of t (`step_t`): torchdiffeq's dense output between
    steps is a 4th-order polynomial, which caps dopri8 near 1e-8 on our grids. `tick` hears
    every TICK_EVALUATIONS evaluations. Raises ValueError past EVALUATIONS_MAX evaluations
    (`name` says which flow)."""
    count = 0

    def counted(time: torch.Tensor, state: Any) -> Any:
        nonlocal count
        count += 1
        if count % TICK_EVALUATIONS == 0:
            tick(f"{name}: integrator, {count} evaluations")
        if count > EVALUATIONS_MAX:
            raise ValueError(
                f"{name}: the integrator needed over {EVALUATIONS_MAX} evaluations; raise rtol/atol, "
                "shorten t_max or set integrator to null (exact solution only)"
            )
        return field(time, state)

    if spec.method in ADAPTIVE:  # land on every grid time: no dense-output interpolation error
        options, tolerances = {"step_t": t}, {"rtol": spec.rtol, "atol": spec.atol}
    else:
        options, tolerances = {"step_size": spec.step_size}, {}
    with torch.no_grad():
        solution = odeint(counted, start, t, method=spec.method, options=options, **tolerances)
    return solution, count


def integrate(
    flow: Flow, K: torch.Tensor, e0: torch.Tensor, t: torch.Tensor, spec: IntegratorSpec, tick: Tick = no_tick
) -> tuple[torch.Tensor, int]:
    """e(t) on the grid by `solve` on the flow's first-order system with K itself, and the number
    of evaluations. K: (n, n), e0: (n,), t: (T,) increasing from 0 -> (T, n)."""
    start = e0 if flow.order == 1 else torch.stack([e0, torch.zeros_like(e0)])
    solution, count = solve(flow.name, vector_field(flow, K), start, t, spec, tick)
    return (solution if flow.order == 1 else solution[:, 0]), count


def start_description(flow: Flow) -> str:
    """How the integration starts, for the result."""
    if flow.r is None:
        return "t = 0 from e(0), e'(0) = 0"
    return f"t = 0, the singular damping {flow.r:g}/t replaced there by its limit: e''(0) = -K e(0)/(1 + r)"


def largest_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """max over rows of |a_j - b_j|_2. a, b: (T, n)."""
    return float((a - b).norm(dim=1).max())


def exact_on(
    lam: torch.Tensor, V: torch.Tensor, flow: Flow, e0: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The exact e(t) in the data basis: (phi(t) * (V^T e0)) V^T. V: (n, n) columns -> (T, n)."""
    return (mode_factors(flow, lam, t) * (V.T @ e0)[None, :]) @ V.T
