"""A figure as data: named series of (x, y) points on two labelled axes, with optional bands.
What the pages draw with Plotly and `ntkdyn plot` renders with matplotlib."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["lines", "markers", "lines+markers"]
Dash = Literal["solid", "dash", "dot"]
Number = float | None
"""A point's coordinate; None where the result holds no finite number."""
Category = str
"""An x that is a label, not a number (a sweep's axis of optimizer names)."""


@dataclass(frozen=True)
class Series:
    """One line (or set of markers): `y[i]` at `x[i]`; with a band, `low[i] <= y[i] <= high[i]`
    (the spread of the replicates behind a mean, a confidence interval), drawn filled around a
    line and as error bars on markers alone."""

    name: str
    x: list[Number | Category]
    y: list[Number]
    low: list[Number] | None = None
    high: list[Number] | None = None
    mode: Mode = "lines"
    dash: Dash = "solid"
    group: str | None = None
    """Series of one group share a colour (a run and the lines fitted to it); default: its own."""

    def __post_init__(self) -> None:
        lengths = {len(self.x), len(self.y)} | {len(b) for b in (self.low, self.high) if b is not None}
        if len(lengths) > 1:
            raise ValueError(f"series {self.name!r} has coordinates of lengths {sorted(lengths)}")
        if (self.low is None) != (self.high is None):
            raise ValueError(f"series {self.name!r} has one side of a band")

    @property
    def bars(self) -> bool:
        """Whether its band is drawn as error bars: markers without a line."""
        return self.low is not None and "lines" not in self.mode

    def bar_lengths(self) -> tuple[list[Number], list[Number]]:
        """Its band as error bar lengths: (y - low, high - y), None where any of them is missing
        or not finite."""
        y, low, high = finites(self.y), finites(self.low or []), finites(self.high or [])
        below = [v - lo if v is not None and lo is not None else None for v, lo in zip(y, low, strict=True)]
        above = [hi - v if v is not None and hi is not None else None for v, hi in zip(y, high, strict=True)]
        return below, above

    @property
    def key(self) -> str:
        """What its colour is chosen by: its group, or its name."""
        return self.group or self.name


@dataclass(frozen=True)
class Figure:
    """One plot: its series on axes that are linear or logarithmic."""

    name: str
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    x_log: bool = False
    y_log: bool = False

    def colors(self) -> dict[str, int]:
        """The position of each series' colour in a colour cycle, by `Series.key`: the groups
        in the order they first appear."""
        return {key: number for number, key in enumerate(dict.fromkeys(s.key for s in self.series))}


def finite(value: object) -> Number:
    """The value as a float, or None when it is missing or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def finites(values: Sequence[object]) -> list[Number]:
    return [finite(value) for value in values]
