"""A sweep result's figures: each numeric metric against each axis, a line per combination of
the other axes' values, and each baseline as a horizontal line."""

import itertools
import json
from typing import Any

from .figure import Figure, Number, Series, finite

DECADES = 10.0
"""A positive axis spanning at least this ratio is drawn logarithmic."""


def sweep_figures(result: dict[str, Any]) -> list[Figure]:
    """`<metric>-vs-<axis>` for every metric with a number in some row and every axis: the
    metric against the axis value (a numeric axis sorted, and logarithmic when its values are
    positive and span a decade; any other axis as categories in grid order), one line per
    combination of the other axes (`other=value, ...`, or the metric's name for a single axis),
    each baseline with a number a dashed horizontal line over a numeric axis. A list-valued
    metric (one number per replicate) has no figure: the table shows it."""
    rows = [row for row in result["rows"] if row["baseline"] is None]
    baselines = [row for row in result["rows"] if row["baseline"] is not None]
    numeric = [
        metric
        for metric in result["metrics"]
        if any(finite(row["metrics"].get(metric)) is not None for row in result["rows"])
    ]
    return [
        against(metric, axis, result["axes"], rows, baselines)
        for metric, axis in itertools.product(numeric, result["axes"])
    ]


def against(
    metric: str, axis: str, axes: list[str], rows: list[dict[str, Any]], baselines: list[dict[str, Any]]
) -> Figure:
    """One metric against one axis."""
    others = [other for other in axes if other != axis]
    values = [row["values"].get(axis) for row in rows]
    ordered = all(finite(value) is not None for value in values)
    lines: dict[str, list[tuple[Any, Number]]] = {}
    for row, value in zip(rows, values, strict=True):
        name = ", ".join(f"{other}={label(row['values'].get(other))}" for other in others) or metric
        lines.setdefault(name, []).append(
            (value if ordered else label(value), finite(row["metrics"].get(metric)))
        )
    series = [
        Series(name, [x for x, _ in points], [y for _, y in points], mode="lines+markers")
        for name, points in lines.items()
        for points in [sorted(points, key=lambda point: point[0]) if ordered else points]
    ]
    if ordered and values:
        ends = [min(values), max(values)]
        series += [
            Series(row["baseline"], ends, [level, level], dash="dash")
            for row in baselines
            if (level := finite(row["metrics"].get(metric))) is not None
        ]
    y = [value for line in series for value in line.y if value is not None]
    return Figure(
        f"{metric}-vs-{axis}",
        f"{metric} against {axis}",
        axis,
        metric,
        series,
        x_log=ordered and spans_decade(values),
        y_log=spans_decade(y),
    )


def label(value: Any) -> str:
    """An axis value as text: a list or mapping as JSON."""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def spans_decade(values: list[Any]) -> bool:
    """Whether the numbers are all positive and the largest is at least `DECADES` times the smallest."""
    numbers = [finite(value) for value in values]
    positive = [number for number in numbers if number is not None and number > 0]
    return bool(positive) and len(positive) == len(numbers) and max(positive) >= DECADES * min(positive)
