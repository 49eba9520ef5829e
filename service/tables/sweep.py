"""A sweep result's table: one row per grid point or baseline."""

import json
from typing import Any

from .table import Table


def sweep_tables(result: dict[str, Any]) -> dict[str, Table]:
    """`points`: one row per grid point or baseline: its axis values, child job, status, whether
    an identical job answered it, and each metric; a value that is neither a number nor text (a
    list, a mapping) is written as JSON."""
    header = ["baseline", *result["axes"], "job", "status", "cached", *result["metrics"]]
    rows = (
        [
            row["baseline"] or "",
            *(row["values"].get(axis) for axis in result["axes"]),
            row["job"],
            row["status"],
            row["cached"],
            *(row["metrics"].get(metric) for metric in result["metrics"]),
        ]
        for row in result["rows"]
    )
    return {"points": Table.of(header, ([cell(value) for value in row] for row in rows))}


def cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value
