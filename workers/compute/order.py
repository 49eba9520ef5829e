"""The order of convergence of a loss sequence: p in e_{k+1} ~ C e_k^p, from consecutive steps.

Errors: e_k = L_k - L*, with L* = 0, the loss an over-parameterized net interpolating its data
reaches (every train job's setting). The order is the same for the loss and for the residual
norm (L = |r|^2 / 2 turns |r_{k+1}| <= C |r_k|^p into L_{k+1} <= C' L_k^p).

Estimate (Nocedal & Wright 2006, sec. 2.2, for the definitions; the estimator is the standard
log-log one): least squares of log e_{k+1} on log e_k over consecutive steps; the slope is p
(exactly 1 for e_{k+1} = rho e_k, exactly 2 for e_{k+1} = C e_k^2, whatever C or rho), with the
standard error of the slope, se = sqrt(SS_res / (m - 2) / S_xx) over the m pairs (nominal:
consecutive pairs share their points). Beside it the range of the triples
p_k = log(e_{k+1} / e_k) / log(e_k / e_{k-1}), each the slope between two consecutive pairs.

Window: the losses before the first one that is non-finite or at or below `floor` (what follows
is round-off or divergence: cut, not skipped), from the first one an e-fold below the initial
loss (the first steps from far away are not yet in the asymptotic regime the order describes;
without such a drop, from step 0).

Verdict, with band = max(ORDER_BAND, 2 se): `undetermined` with fewer than MIN_STEPS losses in
the window, when the loss does not fall across it, or when p is within the band of both 1 and 2
(or of neither, below 1 + band); else `quadratic` when |p - 2| <= band, `linear` when
|p - 1| <= band (order 1: this includes power laws, whose ratio e_{k+1}/e_k tends to 1; the rate
fit tells those apart), `superlinear` when p > 1 + band (cubic included)."""

import math
from collections.abc import Sequence

import numpy as np

from schemas.results import ConvergenceOrder

MIN_STEPS = 3  # fewest losses (two consecutive pairs) the order is estimated from
ORDER_BAND = 0.25  # p within this of 1 or 2 counts as that order even when se is smaller
BODY_DROP = 1.0  # nats the loss must fall before the window starts


def _undetermined(
    floor: float, used: int, first: int | None = None, last: int | None = None
) -> ConvergenceOrder:
    return ConvergenceOrder(
        verdict="undetermined",
        order=None,
        order_se=None,
        triple_low=None,
        triple_high=None,
        steps_used=used,
        first_step=first,
        last_step=last,
        floor=floor,
    )


def convergence_order(losses: Sequence[float | None], floor: float) -> ConvergenceOrder:
    """The order of convergence of `losses` (L_0, L_1, ... at consecutive steps 0, 1, ...; None
    or a non-finite value ends the usable part), rules in the module docstring. `floor`: losses
    at or below it are round-off (for a training loss, rates.rounding_floor of the dtype's eps
    and L_0). Raises ValueError for a negative or non-finite floor."""
    if not (math.isfinite(floor) and floor >= 0):
        raise ValueError(f"floor must be a finite number >= 0, got {floor}")
    values = np.array([math.nan if loss is None else loss for loss in losses], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (values <= floor))
    usable = values[: bad[0] if len(bad) else len(values)]
    if len(usable) == 0:
        return _undetermined(floor, 0)
    log_e = np.log(usable)
    dropped = np.flatnonzero(log_e <= log_e[0] - BODY_DROP)
    start = int(dropped[0]) if len(dropped) else 0
    log_e = log_e[start:]
    used, first, last = len(log_e), start, start + len(log_e) - 1
    if used < MIN_STEPS or log_e[-1] >= log_e[0]:
        return _undetermined(floor, used, first, last)
    x, y = log_e[:-1], log_e[1:]
    xc, yc = x - x.mean(), y - y.mean()
    sxx = float(xc @ xc)
    if sxx <= 0:
        return _undetermined(floor, used, first, last)
    p = float(xc @ yc) / sxx
    residual = yc - p * xc
    pairs = len(x)
    se = math.sqrt(float(residual @ residual) / (pairs - 2) / sxx) if pairs > 2 else None
    steps = np.diff(log_e)
    with np.errstate(divide="ignore", invalid="ignore"):
        triples = steps[1:] / steps[:-1]
    triples = triples[np.isfinite(triples)]
    band = max(ORDER_BAND, 2 * (se or 0.0))
    near_one, near_two = abs(p - 1) <= band, abs(p - 2) <= band
    if near_one and near_two:
        verdict = "undetermined"
    elif near_two:
        verdict = "quadratic"
    elif near_one:
        verdict = "linear"
    elif p > 1 + band:
        verdict = "superlinear"
    else:
        verdict = "undetermined"
    return ConvergenceOrder(
        verdict=verdict,
        order=p,
        order_se=se,
        triple_low=float(triples.min()) if len(triples) else None,
        triple_high=float(triples.max()) if len(triples) else None,
        steps_used=used,
        first_step=first,
        last_step=last,
        floor=floor,
    )
