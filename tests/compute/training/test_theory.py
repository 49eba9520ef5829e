"""Rates of convergence predicted from a kernel spectrum (workers.compute.training.theory).

A researcher gives the theory module a spectrum and an optimizer's hyperparameters and expects the
factor per step that the exact linear iterations of GD, heavy ball and Nesterov (constant or
(k-1)/(k+2) momentum) show over a long tail, in every regime; the closed forms kappa gives; Polyak's
automatic choice contracting the error by (sqrt kappa - 1)/(sqrt kappa + 1) per step; and a clear
error for a singular kernel or a hyperparameter out of range. numpy float64, CPU.
"""

import math

import numpy as np
import pytest
import torch

from schemas.results import PredictedRate
from workers.compute.training.theory import (
    auto_gd,
    auto_heavy_ball,
    auto_nesterov,
    gd_rate,
    heavy_ball_rate,
    nesterov_rate,
    nesterov_scheduled_rate,
)

from ..linear_iterations import LAM, Update, gd, heavy_ball, nesterov, schedule, simulate

# LAM, the spectrum the iterations run on, is Wishart with kappa 9.5: its two ends, and float64 eps
EPS = float(np.finfo(np.float64).eps)
MU, BIG = float(LAM.min()), float(LAM.max())


def tail_factor(log_values: np.ndarray, span: int, window: int = 256) -> float:
    """Per-step factor over the last `span` steps, between the envelopes (maxima over `window`
    steps) of the two ends, so that oscillating modes do not bias it."""
    end = log_values[-window:].max()
    start = log_values[-span - window : -span].max()
    return math.exp((end - start) / span)


POLYAK = auto_heavy_ball(LAM)
NESTEROV = auto_nesterov(LAM)

THEORY_CASES = [
    ("gd 0.3/L", gd(0.3 / BIG), gd_rate(LAM, 0.3 / BIG, "test")),
    ("gd 1/L", gd(1 / BIG), gd_rate(LAM, 1 / BIG, "test")),
    ("gd 1.9/L", gd(1.9 / BIG), gd_rate(LAM, 1.9 / BIG, "test")),
    ("hb under-damped", heavy_ball(1 / BIG, 0.5), heavy_ball_rate(LAM, 1 / BIG, 0.5, "test")),
    ("hb over-damped", heavy_ball(0.3 / BIG, 0.5), heavy_ball_rate(LAM, 0.3 / BIG, 0.5, "test")),
    ("hb 0.5/L, 0.9", heavy_ball(0.5 / BIG, 0.9), heavy_ball_rate(LAM, 0.5 / BIG, 0.9, "test")),
    ("hb polyak", heavy_ball(POLYAK.lr, POLYAK.momentum), heavy_ball_rate(LAM, *POLYAK[:2], "test")),
    ("nag 1/L, 0.5", nesterov(1 / BIG, lambda _k: 0.5), nesterov_rate(LAM, 1 / BIG, 0.5, "test")),
    ("nag 0.5/L, 0.8", nesterov(0.5 / BIG, lambda _k: 0.8), nesterov_rate(LAM, 0.5 / BIG, 0.8, "test")),
    (
        "nag auto",
        nesterov(NESTEROV.lr, lambda _k: NESTEROV.momentum),
        nesterov_rate(LAM, *NESTEROV[:2], "test"),
    ),
    (
        "nag (k-1)/(k+2) 1/L",
        nesterov(1 / BIG, schedule),
        nesterov_scheduled_rate(LAM, 1 / BIG, "test"),
    ),
    (
        "nag (k-1)/(k+2) 0.5/L",
        nesterov(0.5 / BIG, schedule),
        nesterov_scheduled_rate(LAM, 0.5 / BIG, "test"),
    ),
]


@pytest.mark.parametrize(
    ("update", "predicted"), [c[1:] for c in THEORY_CASES], ids=[c[0] for c in THEORY_CASES]
)
def test_predicted_rate_matches_the_exact_iteration(update: Update, predicted: PredictedRate) -> None:
    # Long runs: subdominant modes die out, and the polynomial factors (k r^k at a double root,
    # prod (k-1)/(k+2) for the schedule) change the per-step factor by about 1/k.
    log_loss, _ = simulate(update, 20000)
    assert predicted.rate is not None and predicted.kernel == "test"
    assert tail_factor(log_loss, span=6000) == pytest.approx(predicted.rate, rel=1e-3)


def test_closed_forms_of_the_rates() -> None:
    kappa = BIG / MU
    assert gd_rate(LAM, 1 / BIG, "H").rate == pytest.approx((1 - 1 / kappa) ** 2, rel=1e-12)
    assert nesterov_scheduled_rate(LAM, 1 / BIG, "H").rate == pytest.approx(1 - 1 / kappa, rel=1e-12)
    q = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    # Polyak's choice puts a double root at both ends of the spectrum, where r = (b + sqrt(D))/2
    # with D = b^2 - 4c = 0 in exact arithmetic. lr and momentum carry a few eps of rounding each
    # (square roots, quotients) and D amplifies them about fourfold, so |D| <= 16 eps b^2; D > 0
    # moves r by sqrt(D)/2, i.e. r by up to 4 sqrt(eps) relative and the loss factor r^2 by up to
    # 8 sqrt(eps) ~ 1.2e-7. Which way D rounds depends on the last bits of LAM, which LAPACK's
    # kernels set: OPENBLAS_CORETYPE=SkylakeX gives 0 here, Haswell 4.1e-8 (the fresh clone's
    # failure), Sandybridge and Prescott 8.8e-8; the thread count changes nothing.
    assert heavy_ball_rate(LAM, *POLYAK[:2], "H").rate == pytest.approx(q**2, rel=8 * math.sqrt(EPS))
    nesterov_q = 1 - 1 / math.sqrt(kappa)  # a double root at lambda_min: the same bound
    assert nesterov_rate(LAM, *NESTEROV[:2], "H").rate == pytest.approx(nesterov_q**2, rel=8 * math.sqrt(EPS))
    assert gd_rate(LAM, 2.5 / BIG, "H").rate > 1  # beyond 2/lambda_max: divergence
    # a torch spectrum gives the same numbers, and the formula is named
    tensor = gd_rate(torch.from_numpy(LAM), 1 / BIG, "H")
    assert tensor.rate == gd_rate(LAM, 1 / BIG, "H").rate
    assert tensor.formula == "gd: max (1 - eta lambda)^2"


def test_polyak_auto_contracts_the_error_by_the_optimal_factor() -> None:
    kappa = BIG / MU
    q = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert POLYAK.lr == pytest.approx(4 / (math.sqrt(BIG) + math.sqrt(MU)) ** 2, rel=1e-12)
    assert POLYAK.momentum == pytest.approx(q**2, rel=1e-12)
    assert "Polyak" in POLYAK.reason
    # every mode's 2x2 iteration matrix has spectral radius q (a double root at both ends)
    for lam in LAM:
        companion = np.array([[1 + POLYAK.momentum - POLYAK.lr * lam, -POLYAK.momentum], [1.0, 0.0]])
        assert np.abs(np.linalg.eigvals(companion)).max() == pytest.approx(q, rel=1e-6)
    _, log_norm = simulate(heavy_ball(POLYAK.lr, POLYAK.momentum), 20000)
    assert tail_factor(log_norm, span=6000) == pytest.approx(q, rel=1e-3)


def test_auto_choices_and_their_errors() -> None:
    assert auto_gd(LAM).lr == pytest.approx(1 / BIG, rel=1e-12)
    assert auto_gd(LAM).momentum == 0.0
    root = math.sqrt(BIG / MU)
    assert NESTEROV.lr == pytest.approx(1 / BIG, rel=1e-12)
    assert NESTEROV.momentum == pytest.approx((root - 1) / (root + 1), rel=1e-12)
    singular = np.array([2.0, 1.0, -1e-17])  # round-off below 0: the kernel is singular
    with pytest.raises(ValueError, match="singular"):
        auto_heavy_ball(singular)
    with pytest.raises(ValueError, match="singular"):
        auto_nesterov(singular)
    with pytest.raises(ValueError, match="step size"):
        gd_rate(LAM, -1.0, "H")
    with pytest.raises(ValueError, match="momentum"):
        heavy_ball_rate(LAM, 0.1, 1.0, "H")
    with pytest.raises(ValueError, match="spectrum"):
        gd_rate([], 0.1, "H")
