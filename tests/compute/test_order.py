"""The order of convergence of a loss sequence (workers.compute.order).

A researcher hands the order module the losses of consecutive steps and expects: e_{k+1} = c e_k^2
called `quadratic` with p = 2, e_{k+1} = rho e_k called `linear` with p = 1, Newton's method on a
root where f'' vanishes (order 3) called `superlinear` with p = 3, the rounding floor and what
follows it left out, and too short, flat or growing sequences called `undetermined`. numpy
float64, CPU.
"""

import math

import numpy as np
import pytest

from workers.compute.order import convergence_order
from workers.compute.rates import rounding_floor

EPS = float(np.finfo(np.float64).eps)


def iterate(e0: float, update, steps: int) -> list[float]:  # type: ignore[no-untyped-def]
    sequence = [e0]
    for _ in range(steps):
        sequence.append(update(sequence[-1]))
    return sequence


@pytest.mark.parametrize("c", [0.1, 1.0, 30.0])
def test_squaring_errors_are_quadratic(c: float) -> None:
    losses = iterate(0.5 / c, lambda e: c * e * e, 12)  # e_k = (c e_0)^(2^k) / c: 0.5^(2^k) / c
    floor = rounding_floor(EPS, losses[0])
    order = convergence_order(losses, floor)
    assert order.verdict == "quadratic"
    assert order.order == pytest.approx(2.0, abs=1e-9)
    assert order.order_se == pytest.approx(0.0, abs=1e-6)
    assert order.triple_low == pytest.approx(2.0, abs=1e-6) and order.triple_high == pytest.approx(
        2.0, abs=1e-6
    )
    # the window: from step 2 (0.0625 / c, the first loss an e-fold below e_0 = 0.5 / c) to step 6
    # (0.5^64 / c, the last above the floor 1e4 eps^2 e_0 ~ 5e-28 e_0)
    used = [k for k, e in enumerate(losses) if e > floor]
    assert order.last_step == used[-1] == 6 and order.first_step == 2
    assert order.steps_used == order.last_step - order.first_step + 1
    assert order.floor == floor


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_a_constant_ratio_is_linear(rho: float) -> None:
    losses = iterate(3.0, lambda e: rho * e, 60)
    order = convergence_order(losses, rounding_floor(EPS, losses[0]))
    assert order.verdict == "linear"
    assert order.order == pytest.approx(1.0, abs=1e-9)
    assert order.order_se < 1e-9


def test_newton_on_a_root_without_curvature_is_cubic_and_superlinear() -> None:
    """Newton on f(x) = sin x from x0 = 1: x+ = x - tan x = -x^3/3 + O(x^5), order 3 at the root
    0 where f'' = 0 (Nocedal & Wright's Newton analysis with the quadratic term gone). The loss is
    x^2 / 2, as the trainer's is half a squared residual: its order is the same."""
    x = iterate(1.0, lambda x: x - math.tan(x), 6)
    losses = [0.5 * value * value for value in x]
    order = convergence_order(losses, rounding_floor(EPS, losses[0]))
    assert order.verdict == "superlinear"
    assert order.order == pytest.approx(3.0, abs=0.05)
    assert order.steps_used >= 3


def test_noisy_linear_convergence_keeps_order_one_with_an_error_bar() -> None:
    rng = np.random.default_rng(0)
    log_e = np.cumsum(np.log(0.8) + 0.05 * rng.standard_normal(80))
    order = convergence_order(np.exp(log_e).tolist(), 0.0)
    assert order.verdict == "linear"
    assert abs(order.order - 1.0) < 3 * order.order_se + 0.01
    assert 0 < order.order_se < 0.1


def test_too_short_flat_or_growing_sequences_are_undetermined() -> None:
    short = convergence_order([10.0, 1e-2, 1e-5], 0.0)  # two usable steps after the e-fold drop
    assert short.verdict == "undetermined" and short.order is None and short.steps_used == 2
    losses = [1.0, 1e-3, 1e-7, 1e-15, 1e-31]  # digits double from step 1 on
    floored = convergence_order(losses, floor=1e-20)  # 1e-31 is round-off: 3 steps left
    assert (floored.verdict, floored.steps_used, floored.last_step) == ("quadratic", 3, 3)
    assert convergence_order(losses, floor=1e-10).verdict == "undetermined"
    cut = convergence_order([1.0, 1e-3, 1e-7, 0.0, 1e-15], floor=0.0)  # a zero ends the usable part
    assert cut.verdict == "undetermined" and cut.last_step == 2
    assert convergence_order([2.0, 2.0, 2.0, 2.0], 0.0).verdict == "undetermined"
    assert convergence_order([1.0, 2.0, 4.0, 8.0, 16.0], 0.0).verdict == "undetermined"
    assert convergence_order([1.0, None, 0.5, 0.25], 0.0).steps_used == 1
    assert convergence_order([], 0.0).verdict == "undetermined"
    with pytest.raises(ValueError, match="floor"):
        convergence_order([1.0, 0.5, 0.25], math.nan)
