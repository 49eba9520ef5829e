"""Rates of convergence measured on a loss trajectory (workers.compute.rates).

A researcher hands the rate module a recorded loss curve and expects: an exact exponential called
`linear` with its per-step factor, an exact power law called `sublinear` with its exponent, a
power-law phase followed by exponential decay split into two pieces at the right step, the float
floor and a diverged tail left out, noise called `undetermined`; over replicates, the Student t
interval of the rate; and both faces of Nesterov's (k-1)/(k+2) schedule read off its exact linear
iteration. numpy float64, CPU.
"""

import math

import numpy as np
import pytest
from scipy import stats

from schemas.results import RateFit
from workers.compute.rates import fit_rates, rate_interval
from workers.compute.training.engine import record_steps
from workers.compute.training.theory import nesterov_scheduled_rate

from .linear_iterations import nesterov, random_spectrum, schedule, simulate


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
# d) both faces of Nesterov's (k-1)/(k+2) schedule, measured by the rate module
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
