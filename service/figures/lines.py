"""Straight lines in log space drawn over measured points: a fitted slope whose intercept the
result does not keep, given back by least squares from the points it was fitted to."""

import math
from collections.abc import Sequence

from .figure import Number, Series


def log_intercept(x: Sequence[float], y: Sequence[Number], slope: float) -> float | None:
    """The least-squares intercept `a` of `log y ~ a + slope x` for a known slope:
    `a = mean(log y_i - slope x_i)` over the points with a positive y (None when there is none).
    With the slope of a least-squares fit of the same points this is that fit's own intercept."""
    terms = [math.log(b) - slope * a for a, b in zip(x, y, strict=True) if b is not None and b > 0]
    return sum(terms) / len(terms) if terms else None


def power_law(
    name: str, x: Sequence[float], y: Sequence[Number], exponent: float, group: str | None = None
) -> Series | None:
    """`c x^exponent` through the positive points (x, y): c by least squares in log-log
    (`log_intercept` on log x), coloured as `group`; None when no point is positive."""
    logs = [math.log(value) for value in x]
    a = log_intercept(logs, y, exponent)
    if a is None:
        return None
    return Series(name, list(x), [math.exp(a + exponent * value) for value in logs], dash="dash", group=group)


def exponential(
    name: str, x: Sequence[float], y: Sequence[Number], factor: float, group: str | None = None
) -> Series | None:
    """`c factor^x` through the positive points (x, y) (a linear rate: loss ~ rate^k), c by
    least squares of log y on x; None when no point is positive or the factor is not."""
    if factor <= 0:
        return None
    slope = math.log(factor)
    a = log_intercept(x, y, slope)
    if a is None:
        return None
    return Series(name, list(x), [math.exp(a + slope * value) for value in x], dash="dash", group=group)
