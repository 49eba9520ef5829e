"""Rates of convergence: measured on a loss trajectory, and predicted from a kernel spectrum.

A researcher hands the rate module a recorded loss curve and expects: an exact exponential called
`linear` with its per-step factor, an exact power law called `sublinear` with its exponent, a
power-law phase followed by exponential decay split into two pieces at the right step, the float
floor and a diverged tail left out, noise called `undetermined`. From a spectrum and the
optimizer's hyperparameters the theory module must give the factor that the exact linear
iterations of GD, heavy ball and Nesterov show over a long tail, and Polyak's automatic choice
must contract the error by (sqrt kappa - 1)/(sqrt kappa + 1) per step. numpy float64, CPU.
"""

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import stats

from schemas.results import PredictedRate, RateFit
from workers.compute.rates import fit_rates, rate_interval
from workers.compute.training.engine import record_steps
from workers.compute.training.theory import (
    auto_gd,
    auto_heavy_ball,
    auto_nesterov,
    gd_rate,
    heavy_ball_rate,
    nesterov_rate,
    nesterov_scheduled_rate,
)


def log_grid(last: int, points: int) -> np.ndarray:
    """Step 0 and about `points` log-spaced recording steps up to `last`, as the trainer records."""
    return np.array(record_steps(last, points + 1), dtype=np.int64)


def power_law(steps: np.ndarray, p: float) -> np.ndarray:
    """loss_k = k^-p, and loss_0 = 1 (= loss_1)."""
    return np.maximum(steps, 1).astype(np.float64) ** -p


# ---------------------------------------------------------------------------------------------
# a) fits on exact trajectories
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rho", "last"), [(0.5, 10**5), (0.97, 10**4), (0.9995, 10**5)])
def test_exponential_decay_is_linear_with_its_rate(rho: float, last: int) -> None:
    steps = log_grid(last, 300)
    losses = 3.0 * rho ** steps.astype(np.float64)
    fit = fit_rates(steps, losses, floor=3e-30)
    assert fit.verdict == "linear"
    assert fit.rate == pytest.approx(rho, rel=1e-6)
    assert fit.rate_r2 == pytest.approx(1.0, abs=1e-9)
    assert fit.confidence > 0.9
    assert fit.change_step is None
    assert [p.model for p in fit.pieces] == ["linear"]
    assert fit.pieces[0].rate == pytest.approx(rho, rel=1e-6)


@pytest.mark.parametrize("p", [1.0, 1.5, 3.0])
def test_power_law_is_sublinear_with_its_exponent(p: float) -> None:
    steps = log_grid(10**4, 300)
    fit = fit_rates(steps, power_law(steps, p), floor=1e-300)
    assert fit.verdict == "sublinear"
    assert fit.exponent == pytest.approx(p, rel=1e-3)
    assert fit.exponent_r2 == pytest.approx(1.0, abs=1e-9)
    assert fit.confidence > 0.9
    assert fit.change_step is None
    assert [piece.model for piece in fit.pieces] == ["power"]


def test_power_law_then_exponential_gives_two_pieces_and_the_change_step() -> None:
    steps = log_grid(3000, 250)
    change, decay = 300, 0.05  # k^-3 up to step 300, then a factor exp(-0.05) per step
    k = steps.astype(np.float64)
    losses = np.where(k <= change, power_law(steps, 3.0), change**-3.0 * np.exp(-decay * (k - change)))
    fit = fit_rates(steps, losses, floor=1e-30)
    assert fit.verdict == "linear"
    assert [piece.model for piece in fit.pieces] == ["power", "linear"]
    truth = int(np.searchsorted(steps, change))  # the recording index of the change
    assert fit.change_step is not None
    assert abs(int(np.searchsorted(steps, fit.change_step)) - truth) <= 2
    power, linear = fit.pieces
    assert power.exponent == pytest.approx(3.0, rel=1e-3)
    assert linear.rate == pytest.approx(math.exp(-decay), rel=1e-6)
    assert fit.rate == linear.rate and fit.exponent == power.exponent
    assert power.stop_step < fit.change_step == linear.start_step
    assert fit.confidence > 0.9


# ---------------------------------------------------------------------------------------------
# b) the float floor, divergence, noise, too little data
# ---------------------------------------------------------------------------------------------


def test_points_at_the_float_floor_and_after_it_are_left_out() -> None:
    steps = log_grid(10**4, 300)
    clean = 0.98 ** steps.astype(np.float64)  # reaches 1e-30 near step 3420
    floor = 1e-30
    exact = fit_rates(steps, clean, floor)
    assert exact.rate == pytest.approx(0.98, rel=1e-6)
    assert exact.pieces[0].stop_step == steps[clean > floor][-1]

    # round-off once the floor is reached: values bouncing back above it, then a NaN and an inf
    rng = np.random.default_rng(0)
    dirty = clean.copy()
    below = clean <= floor
    dirty[below] = floor * rng.uniform(0.0, 3.0, below.sum())
    dirty[np.argmax(below)] = floor
    dirty[-3:] = [np.nan, np.inf, 1.0]
    fit = fit_rates(steps, dirty, floor)
    assert fit.rate == pytest.approx(0.98, rel=1e-6)
    assert fit.pieces == exact.pieces


def test_a_floor_above_the_initial_loss_or_a_diverged_run_is_undetermined() -> None:
    steps = log_grid(1000, 100)
    losses = 0.9 ** steps.astype(np.float64)
    nothing = fit_rates(steps, losses, floor=2.0)
    assert nothing.verdict == "undetermined"
    assert nothing.rate is None and nothing.pieces == [] and nothing.confidence == 0
    assert nothing.steps_to["1e-3"] is not None  # still measured on the recorded losses

    growing = np.minimum(1.1 ** steps.astype(np.float64), 1e300)
    growing[-20:] = np.inf
    diverged = fit_rates(steps, growing, floor=0.0)
    assert diverged.verdict == "undetermined"
    assert diverged.rate is not None and diverged.rate > 1


@pytest.mark.parametrize("seed", range(5))
def test_noise_is_undetermined(seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = log_grid(5000, 200)
    losses = np.exp(rng.normal(0.0, 1.0, len(steps)))
    fit = fit_rates(steps, losses, floor=0.0)
    assert fit.verdict == "undetermined"
    assert fit.confidence == 0 and fit.pieces == [] and fit.change_step is None


def test_too_few_points_are_undetermined() -> None:
    fit = fit_rates([0, 1, 2, 4], [1.0, 0.5, 0.25, 0.0625], floor=0.0)
    assert fit.verdict == "undetermined" and fit.rate is None and fit.exponent is None


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="one length"):
        fit_rates([0, 1, 2], [1.0, 0.5], floor=0.0)
    with pytest.raises(ValueError, match="increasing"):
        fit_rates([0, 2, 1], [1.0, 0.5, 0.2], floor=0.0)
    with pytest.raises(ValueError, match="floor"):
        fit_rates([0, 1, 2], [1.0, 0.5, 0.2], floor=math.nan)


def test_steps_to_a_fraction_of_the_initial_loss() -> None:
    steps = [0, 1, 2, 4, 8, 16, 32]
    losses = [2.0, 1.0, 2e-2, 2e-3, 2e-5, 0.0, 1e-9]  # 0.0: below the floor, still reached
    fit = fit_rates(steps, losses, floor=1e-12)
    assert fit.steps_to == {"1e-3": 4, "1e-6": 16}
    never = fit_rates(steps, [2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4], floor=0.0)
    assert never.steps_to == {"1e-3": None, "1e-6": None}


def test_the_result_is_a_valid_json_model() -> None:
    steps = log_grid(1000, 100)
    fit = fit_rates(steps, 0.9 ** steps.astype(np.float64), floor=1e-30)
    assert RateFit.model_validate_json(fit.model_dump_json()) == fit


# ---------------------------------------------------------------------------------------------
# c) intervals over replicates
# ---------------------------------------------------------------------------------------------


def test_rate_interval_is_the_student_t_interval() -> None:
    rates = [0.91, 0.93, 0.92, 0.95, 0.90]
    interval = rate_interval(rates)
    low, high = stats.t.interval(0.95, df=4, loc=np.mean(rates), scale=stats.sem(rates))
    assert interval.replicates == 5
    assert interval.mean == pytest.approx(0.922, rel=1e-12)
    assert (interval.low, interval.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    # t_{0.975, 4} = 2.7764451051977987 (tables)
    half = 2.7764451051977987 * np.std(rates, ddof=1) / math.sqrt(5)
    assert interval.high - interval.mean == pytest.approx(half, rel=1e-9)


def test_a_single_replicate_has_no_width_and_none_is_an_error() -> None:
    one = rate_interval([0.97])
    assert (one.mean, one.low, one.high, one.replicates) == (0.97, 0.97, 0.97, 1)
    with pytest.raises(ValueError):
        rate_interval([])
    with pytest.raises(ValueError):
        rate_interval([0.9, math.nan])


# ---------------------------------------------------------------------------------------------
# d) theory against the exact linear iterations, mode by mode
# ---------------------------------------------------------------------------------------------

Update = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def random_spectrum(n: int = 24, m: int = 72, seed: int = 7) -> np.ndarray:
    """Eigenvalues of A A^T / m for a Gaussian A (n, m): a Wishart spectrum (kappa 9.5 for the default)."""
    A = np.random.default_rng(seed).standard_normal((n, m))
    return np.linalg.eigvalsh(A @ A.T / m)


LAM = random_spectrum()
EPS = float(np.finfo(np.float64).eps)
MU, BIG = float(LAM.min()), float(LAM.max())
E0 = np.random.default_rng(8).standard_normal(len(LAM))  # residual in the eigenbasis: all modes


def simulate(update: Update, steps: int, e0: np.ndarray = E0) -> tuple[np.ndarray, np.ndarray]:
    """Run e_{k+1} = update(e_k, e_{k-1}, k) from e_0 = e_{-1} = e0 (zero velocity), rescaling
    the state every step (the recursion is linear) to stay clear of underflow. Returns log loss
    and log |e| at k = 0..steps, with loss = |e|^2 / 2."""
    e, previous, scale = e0.copy(), e0.copy(), 0.0
    log_norm = np.empty(steps + 1)
    for k in range(steps + 1):
        norm = np.linalg.norm(e)
        log_norm[k] = math.log(norm) + scale
        e, previous, scale = e / norm, previous / norm, scale + math.log(norm)
        e, previous = update(e, previous, k), e
    return 2 * log_norm - math.log(2.0), log_norm


def tail_factor(log_values: np.ndarray, span: int, window: int = 256) -> float:
    """Per-step factor over the last `span` steps, between the envelopes (maxima over `window`
    steps) of the two ends, so that oscillating modes do not bias it."""
    end = log_values[-window:].max()
    start = log_values[-span - window : -span].max()
    return math.exp((end - start) / span)


def gd(lr: float) -> Update:
    return lambda e, _previous, _k: (1 - lr * LAM) * e


def heavy_ball(lr: float, beta: float) -> Update:
    return lambda e, previous, _k: (1 + beta - lr * LAM) * e - beta * previous


def nesterov(lr: float, beta: Callable[[int], float], lam: np.ndarray = LAM) -> Update:
    return lambda e, previous, k: (1 - lr * lam) * ((1 + beta(k)) * e - beta(k) * previous)


def schedule(k: int) -> float:
    """Nesterov's momentum (k-1)/(k+2) (0 at the first step)."""
    return max(0.0, (k - 1) / (k + 2))


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
    # with D = b^2 - 4c = 0 in exact arithmetic. Rounding leaves |D| up to a few eps b^2 (and LAM
    # itself differs by ulps between LAPACK builds), so r moves by up to sqrt(eps) |b| ~ 2 sqrt(eps) r
    # and the loss factor r^2 by twice that: 8 sqrt(eps) ~ 1.2e-7 bounds it (4.1e-8 measured over
    # 2000 ulp-perturbed spectra).
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


# ---------------------------------------------------------------------------------------------
# e) both faces of Nesterov's (k-1)/(k+2) schedule, measured by the rate module
# ---------------------------------------------------------------------------------------------


# kappa 24, near that of H_inf for 32 points on the sphere in d = 8 (about 27, SCIENCE.md section 1)
WIDE = random_spectrum(n=32, m=64, seed=3)


def scheduled_nesterov(lr: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Losses of (k-1)/(k+2) Nesterov on the WIDE spectrum, recorded on a log grid."""
    e0 = np.random.default_rng(9).standard_normal(len(WIDE))
    log_loss, _ = simulate(nesterov(lr, schedule, WIDE), steps, e0)
    grid = log_grid(steps, 400)
    return grid, np.exp(log_loss[grid])


def test_scheduled_nesterov_turns_linear_at_a_large_step() -> None:
    lr = 1 / WIDE.max()
    steps, losses = scheduled_nesterov(lr, 2000)
    fit = fit_rates(steps, losses, floor=1e-30 * losses[0])
    assert fit.verdict == "linear"
    assert [piece.model for piece in fit.pieces] == ["power", "linear"]
    # the power phase lasts while 3/k exceeds eta lambda_min, about 3 kappa = 90 steps
    assert fit.change_step is not None and 30 <= fit.change_step <= 300
    # at finite k the factor is (1 - 3/k)(1 - eta lambda_min): within 1% over these steps
    assert fit.rate == pytest.approx(nesterov_scheduled_rate(WIDE, lr, "test").rate, rel=0.01)


def test_scheduled_nesterov_is_sublinear_at_a_small_step() -> None:
    steps, losses = scheduled_nesterov(0.01 / WIDE.max(), 3000)
    fit = fit_rates(steps, losses, floor=1e-30 * losses[0])
    assert fit.verdict == "sublinear"
    assert fit.exponent is not None and 2.5 <= fit.exponent <= 4.5
