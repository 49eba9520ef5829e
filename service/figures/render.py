"""Figures as one PNG or SVG image, a subplot per figure, drawn with matplotlib (the `plot`
extra), imported only when an image is asked for."""

import math
from pathlib import Path
from typing import Any

from .figure import Figure, Series

FORMATS = {".png": "png", ".svg": "svg"}
"""Image formats by file suffix."""
DASHES = {"solid": "-", "dash": "--", "dot": ":"}
COLUMNS = 2
PANEL_INCHES = (8.0, 4.4)
"""Each subplot's size, its legend beside it included."""
BAND_ALPHA = 0.2
CYCLE = 10
"""Colours in matplotlib's default cycle (C0 ... C9)."""


class PlotExtraMissing(ImportError):
    """matplotlib is not installed: images need the `plot` extra."""

    def __init__(self) -> None:
        super().__init__("rendering images needs matplotlib: pip install 'ntkdyn[plot]'")


def image_format(path: Path) -> str:
    """The image format of a file name, by its suffix (ValueError for any other suffix)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{path}: an image is {' or '.join(FORMATS)}, not {suffix or 'a name without suffix'}"
        )
    return FORMATS[suffix]


def render(figures: list[Figure], path: Path) -> None:
    """Write the figures as one image at `path`, PNG or SVG by its suffix: a grid of subplots
    `COLUMNS` wide with each figure's title, axis labels and scales, its series (a band filled in
    its line's colour, error bars on markers) and a legend. ValueError for a bad suffix or no figure; PlotExtraMissing
    without matplotlib."""
    shape = image_format(path)
    if not figures:
        raise ValueError("no figure to render")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as Canvas
    except ImportError:
        raise PlotExtraMissing() from None
    columns = min(COLUMNS, len(figures))
    rows = math.ceil(len(figures) / columns)
    canvas = Canvas(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows), layout="constrained")
    FigureCanvasAgg(canvas)
    panels = canvas.subplots(rows, columns, squeeze=False).flatten()
    for figure, panel in zip(figures, panels, strict=False):
        draw(figure, panel)
    for panel in panels[len(figures) :]:
        panel.set_axis_off()
    canvas.savefig(path, format=shape)


def draw(figure: Figure, panel: Any) -> None:
    """One figure on one matplotlib Axes."""
    panel.set_title(figure.title, fontsize="medium")
    panel.set_xlabel(figure.x_label)
    panel.set_ylabel(figure.y_label)
    colors = figure.colors()
    for series in figure.series:
        color = f"C{colors[series.key] % CYCLE}"
        plot(series, panel, color)
        if series.bars:
            bars(series, panel, color)
        elif series.low is not None and series.high is not None:
            panel.fill_between(
                series.x,
                numbers(series.low),
                numbers(series.high),
                color=color,
                alpha=BAND_ALPHA,
                lw=0,
            )
    if figure.x_log:
        panel.set_xscale("log")
    if figure.y_log:
        panel.set_yscale("log")
    if figure.series:
        panel.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def plot(series: Series, panel: Any, color: str) -> None:
    """A series' line or markers."""
    lines = "lines" in series.mode
    panel.plot(
        series.x,
        numbers(series.y),
        linestyle=DASHES[series.dash] if lines else "none",
        marker="o" if "markers" in series.mode else None,
        markersize=4,
        color=color,
        label=series.name,
    )


def bars(series: Series, panel: Any, color: str) -> None:
    """Markers' band as error bars from `low` to `high` (none where either is unknown)."""
    below, above = series.bar_lengths()
    yerr = [numbers(below), numbers(above)]
    panel.errorbar(series.x, numbers(series.y), yerr=yerr, fmt="none", ecolor=color, elinewidth=1, capsize=2)


def numbers(values: list[float | None]) -> list[float]:
    """None (no number there) as NaN, which matplotlib leaves out."""
    return [math.nan if value is None else value for value in values]
