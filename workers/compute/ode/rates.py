"""Rates in continuous time: the time grid, the rate module's fits converted from steps to
time, and what the exact mode solutions predict.

The rate module (`fit_rates`) fits log loss against an integer step k. Every grid time here is
an integer multiple k of a quantum tau = t_max / Q, so the fit runs on k exactly, with no
rounding of times: its per-step loss factor rho becomes the decay exponent c = -log(rho)/tau
(loss ~ exp(-c t)), and its power p (loss ~ k^-p) is the same in t, since log t = log k + log tau.
"""

import math
import sys

import numpy as np

from schemas.ode import TimeGrid
from schemas.ode_results import ContinuousRate, TheoryRate
from workers.compute.ode.flows import Flow
from workers.compute.rates import fit_rates

LINEAR_QUANTA = 4096
"""Quanta between two points of a linear grid."""
LOG_QUANTA = 2**24
"""Quanta in t_max on a log grid: t_min >= t_max / 1e6 is then at least 16 quanta."""
LOG_START = 1e-3
"""A log grid's default t_min, as a fraction of t_max."""


def time_grid(grid: TimeGrid) -> tuple[np.ndarray, float]:
    """The grid as integer multiples k of a quantum tau, and tau: t = k tau. Linear: evenly
    spaced, exact; log: t = 0, then `points - 1` geometric times from t_min to t_max rounded to
    the nearest quantum (repeats dropped). k: (T,) int64 increasing from 0."""
    if grid.spacing == "linear":
        return np.arange(grid.points, dtype=np.int64) * LINEAR_QUANTA, grid.t_max / (
            (grid.points - 1) * LINEAR_QUANTA
        )
    t_min = grid.t_min if grid.t_min is not None else LOG_START * grid.t_max
    first = LOG_QUANTA * t_min / grid.t_max
    quanta = np.unique(np.round(np.geomspace(first, LOG_QUANTA, grid.points - 1)).astype(np.int64))
    return np.concatenate([[0], quanta]), grid.t_max / LOG_QUANTA


def continuous_rate(quanta: np.ndarray, tau: float, loss: np.ndarray, floor: float) -> ContinuousRate:
    """fit_rates on (k, loss), converted to time: c = -log(rho)/tau, p unchanged, steps to
    times. quanta: (T,) ints from 0, loss: (T,), floor: losses at or below it are round-off."""
    fit = fit_rates(quanta.tolist(), loss.tolist(), floor)
    decay = -math.log(fit.rate) / tau if fit.rate is not None and fit.rate > 0 else None
    return ContinuousRate(
        verdict=fit.verdict,
        confidence=fit.confidence,
        loss_decay=decay,
        residual_decay=None if decay is None else decay / 2.0,
        decay_r2=fit.rate_r2,
        loss_exponent=fit.exponent,
        exponent_r2=fit.exponent_r2,
        change_time=None if fit.change_step is None else fit.change_step * tau,
        time_to={key: None if step is None else step * tau for key, step in fit.steps_to.items()},
    )


def slowest_damped_rate(lam: float, gamma: float) -> float:
    """Decay rate of the mode phi'' + gamma phi' + lam phi = 0: gamma/2 when under-damped, else
    the slow root gamma/2 - omega = lam/(gamma/2 + omega), omega = sqrt(gamma^2/4 - lam), written
    without cancellation. Non-decreasing in lam, so the slowest mode is lambda_min's
    (docs/science.md §1; best uniform rate sqrt(lambda_min) at gamma = 2 sqrt(lambda_min)).
    Within a few ulps of critical damping the roots are a double root: omega = sqrt(rounding)
    would move the rate by ~1e-8 on a one-ulp change of lam (a gamma set to 2 sqrt(lam) is
    critical only to rounding)."""
    square = gamma * gamma / 4.0 - lam
    if square <= 4 * sys.float_info.epsilon * lam:
        return gamma / 2.0
    return lam / (gamma / 2.0 + math.sqrt(square))


def predicted(flow: Flow, lambda_min: float, fit: ContinuousRate) -> TheoryRate:
    """The slowest mode's law, and the measured / predicted ratio when the verdict agrees:
    gd_flow |e| ~ exp(-lambda_min t); constant damping |e| ~ exp(-slowest_damped_rate t);
    damping r/t loss ~ t^-r (J_nu(z) ~ sqrt(2/(pi z)) cos(z - ...), so phi ~ t^-(nu + 1/2) = t^(-r/2))."""
    lam = max(lambda_min, 0.0)
    if flow.r is not None:
        ratio = fit.loss_exponent / flow.r if fit.verdict == "sublinear" and fit.loss_exponent else None
        return TheoryRate(
            model="power",
            residual_decay=None,
            loss_exponent=flow.r,
            formula="loss ~ t^-r: each mode Gamma(nu+1)(2/z)^nu J_nu(z) ~ t^-(nu+1/2), nu = (r-1)/2",
            ratio=ratio,
        )
    if flow.gamma is None:
        rate, formula = lam, "|e| ~ exp(-lambda_min t)"
    else:
        rate = slowest_damped_rate(lam, flow.gamma)
        formula = "|e| ~ exp(-s t), s = gamma/2 if gamma^2 < 4 lambda_min else gamma/2 - sqrt(gamma^2/4 - lambda_min)"
    measured = fit.residual_decay if fit.verdict == "linear" else None
    return TheoryRate(
        model="linear",
        residual_decay=rate,
        loss_exponent=None,
        formula=formula,
        ratio=measured / rate if measured is not None and rate > 0 else None,
    )
