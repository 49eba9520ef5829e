"""A result document as tidy tables (one row per observation, one column per variable) and the
arrays that are not tables (a kernel matrix): what `GET /v1/jobs/{id}/result?format=csv|parquet|npz`
serves and what a notebook reads. Pure Python: the client imports it without the server."""

from collections.abc import Callable
from typing import Any

from .convex import convex_tables
from .kernel import kernel_arrays, kernel_tables
from .landscape import landscape_tables
from .ode import ode_tables
from .sweep import sweep_tables
from .table import Table
from .train import train_tables

TABLES: dict[str, Callable[[dict[str, Any]], dict[str, Table]]] = {
    "kernel": kernel_tables,
    "train": train_tables,
    "ode": ode_tables,
    "landscape": landscape_tables,
    "convex": convex_tables,
    "sweep": sweep_tables,
}
"""Per kind: its tables by name, the first one the default of a single-table format."""

ARRAYS: dict[str, Callable[[dict[str, Any]], dict[str, list[Any]]]] = {"kernel": kernel_arrays}
"""Per kind: its arrays that are no table (nested lists, any shape)."""


def tables(result: dict[str, Any]) -> dict[str, Table]:
    """The tables of a result document, by name (ValueError for a document of no known kind)."""
    kind = result.get("kind")
    if kind not in TABLES:
        raise ValueError(f"a result of kind {kind!r} has no tables")
    return TABLES[kind](result)


def table(result: dict[str, Any], name: str | None) -> tuple[str, Table]:
    """One table of a result and its name: `name`, or the kind's first. ValueError naming the
    tables there are when `name` is not one of them."""
    found = tables(result)
    chosen = next(iter(found)) if name is None else name
    if chosen not in found:
        raise ValueError(f"a {result['kind']} result has no table {name!r}; its tables: {', '.join(found)}")
    return chosen, found[chosen]


def arrays(result: dict[str, Any]) -> dict[str, list[Any]]:
    """Every column of every table as `TABLE.COLUMN`, beside the kind's other arrays."""
    columns = {
        f"{name}.{column}": values
        for name, found in tables(result).items()
        for column, values in found.columns.items()
    }
    return columns | ARRAYS.get(result["kind"], lambda _: {})(result)


__all__ = ["Table", "arrays", "table", "tables"]
