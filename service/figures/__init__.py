"""A result document as figures: named series on labelled axes, for every kind of result. The
pages draw them with Plotly (`plotly`), `ntkdyn plot` renders them as PNG or SVG (`render`,
with the `plot` extra). Pure Python: the client imports it without the server."""

from collections.abc import Callable, Sequence
from typing import Any

from .convex import convex_figures
from .figure import Figure, Series
from .kernel import kernel_figures
from .landscape import landscape_figures
from .ode import ode_figures
from .plotly import plotly
from .render import PlotExtraMissing, image_format, render
from .sweep import sweep_figures
from .train import train_figures

BUILDERS: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {
    "kernel": kernel_figures,
    "train": train_figures,
    "ode": ode_figures,
    "landscape": landscape_figures,
    "convex": convex_figures,
    "sweep": sweep_figures,
}
"""Per kind: the figures of its result, those its document has the data for."""


def figures(result: dict[str, Any]) -> list[Figure]:
    """The figures of a result document (ValueError for a document of no known kind)."""
    kind = result.get("kind")
    if kind not in BUILDERS:
        raise ValueError(f"a result of kind {kind!r} has no figures")
    return BUILDERS[kind](result)


def select(found: Sequence[Figure], names: Sequence[str]) -> list[Figure]:
    """The figures named `names`, in that order; all of them when `names` is empty. ValueError
    naming the figures there are when a name is not one of them."""
    by_name = {figure.name: figure for figure in found}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(
            f"no figure {', '.join(map(repr, unknown))}; the figures of this result: {', '.join(by_name)}"
        )
    return [by_name[name] for name in names] if names else list(found)


__all__ = [
    "BUILDERS",
    "Figure",
    "PlotExtraMissing",
    "Series",
    "figures",
    "image_format",
    "plotly",
    "render",
    "select",
]
