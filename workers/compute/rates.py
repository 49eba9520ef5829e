"""Linear or sublinear? Convergence rates measured on a recorded loss trajectory.

Two models of log loss (docs/science.md, "Rate estimation"), fitted by least squares:
- linear convergence, `log L_k = a + k log(rho)`: regress log loss on the step k; `rho = exp(slope)`
  is the per-step loss factor;
- a power law, `log L_k = a - p log k`: regress log loss on log k (steps k >= 1); `p` is the
  exponent of `L ~ k^-p`.

Windows, in this order:
- usable: the points before the first one whose loss is non-finite or at or below `floor` (the
  float floor; whatever follows it is round-off or a diverged run, so it is cut, not skipped);
- body: the usable points with k >= 1 from the first one whose loss has fallen e-fold below the
  initial loss (this skips an initial plateau, such as the flat start of Nesterov's ODE);
- tail: the body after the first third of the log-loss descent `D = log L_0 - min_k log L_k`,
  i.e. from the first point with `log L_k <= log L_0 - D/3` (this skips the transient: fast
  modes dying, the plateau). Measured in loss rather than in steps, the rule favours neither
  model: a third of the descent is a third of the steps of an exponential and a third of the
  decades of a power law. If that leaves fewer than 5 points, the tail is the last 5 of the body.

Verdict on the tail: the model with the smaller residual sum of squares (both have two
parameters and the same points), provided its R^2 >= 0.9 and the loss decreases along it
(`rho < 1`, `p > 0`); otherwise `undetermined`. Confidence = R^2 of the winner times
`1 - SS_winner / SS_loser`, the share of the loser's residual the winner removes: 1 for an exact
law, near 0 when both fit alike, 0 when undetermined.

Change of regime: on the body, every recorded step b is tried as the start of a linear piece
that follows a power-law piece (each at least 5 points). The best split is accepted when it cuts
the residual sum of squares at least three-fold below the best single model on the body (both
sums padded by a round-off allowance, so an exact law is never "improved"), both pieces have
R^2 >= 0.9, the first piece is fitted better by its power law than by a line and the second
better by a line than by a power law. Then the verdict is `linear` (the last piece, the
asymptotic behaviour), `pieces` holds both, and the confidence is R^2 of the two-piece fit times
`1 - SS_two / SS_single`.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from schemas.results import RateFit, RateInterval, RatePiece
from workers.compute.stats import Line, fit_line

R2_MIN = 0.9  # a fit of log loss below this describes nothing
MIN_POINTS = 5  # fewest points in a fit or a piece
TRANSIENT_SHARE = 1 / 3  # share of the log-loss descent left out as transient
BODY_DROP = 1.0  # nats the loss must fall before the body starts
CHANGE_GAIN = 3.0  # a change of regime must cut the residual sum of squares this much
ROUND_OFF = 1e-10  # relative size of a residual that is round-off, not misfit
FRACTIONS = {"1e-3": 1e-3, "1e-6": 1e-6}
FLOOR_FACTOR = 1e4
"""Losses below FLOOR_FACTOR * eps^2 * (initial loss) are rounding noise, not dynamics."""


def rounding_floor(eps: float, initial_loss: float) -> float:
    """The loss below which a trajectory computed with machine epsilon `eps` is rounding noise."""
    return FLOOR_FACTOR * eps**2 * initial_loss


def _exp_or_none(slope: float) -> float | None:
    return math.exp(slope) if slope < 700 else None


def _piece(model: Literal["linear", "power"], steps: np.ndarray, line: Line) -> RatePiece:
    return RatePiece(
        model=model,
        start_step=int(steps[0]),
        stop_step=int(steps[-1]),
        rate=_exp_or_none(line.slope) if model == "linear" else None,
        exponent=-line.slope if model == "power" else None,
        r2=line.r2,
    )


def _segment_ss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residual sum of squares of the least-squares line through the first j points, for
    j = 1..m, from prefix sums (O(m)); used only to choose a breakpoint, then refitted."""
    x = x - x.mean()
    y = y - y.mean()
    count = np.arange(1, len(x) + 1, dtype=np.float64)
    sx, sy = np.cumsum(x), np.cumsum(y)
    sxx = np.cumsum(x * x) - sx * sx / count
    sxy = np.cumsum(x * y) - sx * sy / count
    syy = np.cumsum(y * y) - sy * sy / count
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = syy - np.where(sxx > 0, sxy * sxy / sxx, 0.0)
    return np.maximum(ss, 0.0)


@dataclass(frozen=True)
class Change:
    split: int  # index of the first point of the linear piece
    power: Line
    linear: Line
    gain: float  # 1 - SS_two / SS_single
    r2: float  # of the two-piece fit


def find_change(k: np.ndarray, y: np.ndarray) -> Change | None:
    """The best split of (k, y = log loss) into a power law then a linear piece, if it fits
    markedly better than either model alone (rules in the module docstring). k: (m,) >= 1."""
    m = len(k)
    if m < 2 * MIN_POINTS:
        return None
    log_k = np.log(k)
    # power piece on points [0, b): prefix fits; linear piece on [b, m): prefix fits of the reversal
    ss_power = _segment_ss(log_k, y)
    ss_linear = _segment_ss(k[::-1] / k[-1], y[::-1])[::-1]
    splits = np.arange(MIN_POINTS, m - MIN_POINTS + 1)
    b = int(splits[np.argmin(ss_power[splits - 1] + ss_linear[splits])])
    power, linear = fit_line(log_k[:b], y[:b]), fit_line(k[b:], y[b:])
    whole = fit_line(k, y)
    single = min(whole.ss_res, fit_line(log_k, y).ss_res)
    two = power.ss_res + linear.ss_res
    allowance = m * (ROUND_OFF * (1.0 + float(np.max(np.abs(y))))) ** 2
    if CHANGE_GAIN * (two + allowance) > single + allowance:
        return None
    if min(power.r2, linear.r2) < R2_MIN or power.slope >= 0 or linear.slope >= 0:
        return None
    if fit_line(k[:b], y[:b]).ss_res <= power.ss_res or fit_line(log_k[b:], y[b:]).ss_res <= linear.ss_res:
        return None
    r2 = 1.0 - two / whole.ss_tot if whole.ss_tot > 0 else 0.0
    return Change(b, power, linear, gain=1.0 - two / single, r2=min(1.0, max(0.0, r2)))


def steps_to(steps: np.ndarray, losses: np.ndarray) -> dict[str, int | None]:
    """First recorded step whose loss is at most each fraction of the initial loss losses[0]."""
    initial = losses[0]
    reached: dict[str, int | None] = dict.fromkeys(FRACTIONS)
    if not (np.isfinite(initial) and initial > 0):
        return reached
    for key, fraction in FRACTIONS.items():
        hits = np.flatnonzero(np.isfinite(losses) & (losses <= fraction * initial))
        reached[key] = int(steps[hits[0]]) if len(hits) else None
    return reached


def _windows(steps: np.ndarray, losses: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the body and of the tail (module docstring)."""
    bad = np.flatnonzero(~np.isfinite(losses) | (losses <= floor))
    usable = bad[0] if len(bad) else len(losses)
    if usable == 0:
        return np.arange(0), np.arange(0)
    y = np.log(losses[:usable])
    descent = y[0] - y.min()
    positive = steps[:usable] >= 1
    dropped = np.flatnonzero(positive & (y <= y[0] - BODY_DROP))
    body = np.arange(dropped[0], usable) if len(dropped) else np.flatnonzero(positive)
    tail = body[y[body] <= y[0] - TRANSIENT_SHARE * descent]
    tail = np.arange(tail[0], usable) if len(tail) else tail
    if len(tail) < MIN_POINTS:
        tail = body[-MIN_POINTS:]
    return body, tail


def fit_rates(steps: Sequence[int], losses: Sequence[float], floor: float) -> RateFit:
    """Fit the linear and power-law models to a recorded loss trajectory, decide between them,
    and look for a change of regime (rules in the module docstring).

    steps: (m,) strictly increasing ints from 0, often log-spaced; losses: (m,) the loss at each;
    floor: losses at or below it are round-off; the residual's rounding error is about eps |y|,
    so about (100 eps)^2 times the initial loss is a safe floor (eps of the training dtype).
    Raises ValueError for mismatched or unordered input."""
    k = np.asarray(steps, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    if k.ndim != 1 or loss.shape != k.shape or len(k) == 0:
        raise ValueError(f"steps and losses must be 1-D of one length, got {k.shape} and {loss.shape}")
    if k[0] < 0 or np.any(np.diff(k) <= 0):
        raise ValueError("steps must be non-negative and strictly increasing")
    if not (math.isfinite(floor) and floor >= 0):
        raise ValueError(f"floor must be a finite number >= 0, got {floor}")
    reached = steps_to(k, loss)
    body, tail = _windows(k, loss, floor)
    if len(tail) < MIN_POINTS:
        return RateFit(
            verdict="undetermined",
            confidence=0.0,
            rate=None,
            rate_r2=None,
            exponent=None,
            exponent_r2=None,
            pieces=[],
            change_step=None,
            steps_to=reached,
        )
    y = np.log(loss[: body[-1] + 1])  # body and tail end at the last usable point

    change = find_change(k[body], y[body])
    if change is not None:
        power_idx, linear_idx = body[: change.split], body[change.split :]
        return RateFit(
            verdict="linear",
            confidence=change.r2 * change.gain,
            rate=_exp_or_none(change.linear.slope),
            rate_r2=change.linear.r2,
            exponent=-change.power.slope,
            exponent_r2=change.power.r2,
            pieces=[
                _piece("power", k[power_idx], change.power),
                _piece("linear", k[linear_idx], change.linear),
            ],
            change_step=int(k[linear_idx[0]]),
            steps_to=reached,
        )

    linear, power = fit_line(k[tail], y[tail]), fit_line(np.log(k[tail]), y[tail])
    model: Literal["linear", "power"]
    model, best, other = (
        ("linear", linear, power) if linear.ss_res <= power.ss_res else ("power", power, linear)
    )
    decided = best.r2 >= R2_MIN and best.slope < 0
    share = 1.0 - best.ss_res / other.ss_res if other.ss_res > 0 else 0.0
    return RateFit(
        verdict=("linear" if model == "linear" else "sublinear") if decided else "undetermined",
        confidence=best.r2 * share if decided else 0.0,
        rate=_exp_or_none(linear.slope),
        rate_r2=linear.r2,
        exponent=-power.slope,
        exponent_r2=power.r2,
        pieces=[_piece(model, k[tail], best)] if decided else [],
        change_step=None,
        steps_to=reached,
    )


def rate_interval(rates: Sequence[float]) -> RateInterval:
    """Mean over R replicates and its 95% Student-t interval, mean -/+ t_{0.975, R-1} s / sqrt(R)
    with s the sample standard deviation (ddof 1); a single replicate gives low = high = mean."""
    values = np.asarray(rates, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError("rate_interval needs at least one finite rate")
    mean = float(values.mean())
    if len(values) == 1:
        return RateInterval(mean=mean, low=mean, high=mean, replicates=1)
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return RateInterval(mean=mean, low=mean - half, high=mean + half, replicates=len(values))
