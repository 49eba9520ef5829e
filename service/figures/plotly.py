"""A figure as the JSON Plotly.newPlot takes: `{"data": traces, "layout": layout}`, plain dicts
and lists of numbers, strings and None (a gap), never NaN or infinity."""

from typing import Any

from .figure import Figure, Number, Series, finite

COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
"""Plotly's default colour cycle: a band takes its line's colour, set explicitly."""
BAND_OPACITY = "33"
"""Hex alpha of a band's fill (0x33 / 0xff: 20%)."""


def plotly(figure: Figure) -> dict[str, Any]:
    """`data`: one scatter trace per series, named as the series; a line's band comes before it
    (two traces named `<series> band`: the lower edge, then the upper one filled down to it, both
    out of the legend and toggled with the series), markers' band is their `error_y`; `layout`:
    axis titles, log axes, a category x axis when x holds labels, and `meta.name`, the figure's
    name."""
    data = []
    colors = figure.colors()
    for series in figure.series:
        color = COLORS[colors[series.key] % len(COLORS)]
        trace = {
            "type": "scatter",
            "name": series.name,
            "x": clean(series.x),
            "y": clean(series.y),
            "mode": series.mode,
            "line": {"color": color, "dash": series.dash},
            "legendgroup": series.key,
        }
        if series.bars:
            trace["error_y"] = error_bars(series, color)
        elif series.low is not None and series.high is not None:
            data += [band(series, series.low, color, None), band(series, series.high, color, "tonexty")]
        data.append(trace)
    categorical = any(isinstance(x, str) for series in figure.series for x in series.x)
    layout = {
        "xaxis": axis(figure.x_label, figure.x_log) | ({"type": "category"} if categorical else {}),
        "yaxis": axis(figure.y_label, figure.y_log),
        "meta": {"name": figure.name},
        "margin": {"t": 24, "r": 16},
        "legend": {"font": {"size": 11}},
    }
    return {"data": data, "layout": layout}


def band(series: Series, edge: list[Number], color: str, fill: str | None) -> dict[str, Any]:
    """One edge of a series' band, as a trace without a line of its own."""
    trace = {
        "type": "scatter",
        "name": f"{series.name} band",
        "x": clean(series.x),
        "y": clean(edge),
        "mode": "lines",
        "line": {"width": 0, "color": color},
        "showlegend": False,
        "legendgroup": series.key,
        "hoverinfo": "skip",
    }
    return trace | ({"fill": fill, "fillcolor": color + BAND_OPACITY} if fill else {})


def error_bars(series: Series, color: str) -> dict[str, Any]:
    """Markers' band as asymmetric error bars: up to `high`, down to `low` (none where unknown)."""
    below, above = series.bar_lengths()
    return {
        "type": "data",
        "symmetric": False,
        "array": above,
        "arrayminus": below,
        "color": color,
        "thickness": 1.5,
    }


def axis(title: str, log: bool) -> dict[str, Any]:
    """An axis: linear, or log with ticks as powers of ten (not SI prefixes: 1f, 10µ)."""
    shown = {"title": {"text": title}, "type": "linear"}
    return shown | {"type": "log", "exponentformat": "power"} if log else shown


def clean(values: list[Any]) -> list[Any]:
    """The values with every non-finite number (NaN, infinity) as None; labels kept."""
    return [value if isinstance(value, str) else finite(value) for value in values]
