"""Results and checks as files: train trajectories as tidy CSV rows, a sweep's table as one CSV
row per grid point, check outcomes as JUnit XML."""

import csv
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from .checks import Outcome

TIDY_COLUMNS = ("run", "replicate", "step", "metric", "value")
TidyRow = tuple[str, int, int, str, float | None]


def trajectories(result: dict[str, Any]) -> Iterator[TidyRow]:
    """One row per run (optimizer), replicate, metric and recorded step of a train result; an
    optimizer named twice is told apart by its index (`nesterov[3]`); steps are written as the
    integers they are. ValueError for a result that records no trajectories."""
    kind = result.get("kind")
    if kind != "train":
        raise ValueError(f"a {kind} result has no trajectories to write as CSV; use --format json")
    names = [optimizer["name"] for optimizer in result["optimizers"]]
    for index, optimizer in enumerate(result["optimizers"]):
        name = optimizer["name"]
        run = name if names.count(name) == 1 else f"{name}[{index}]"
        for replicate, outcome in enumerate(optimizer["runs"]):
            record = outcome["record"]
            for metric, values in record.items():
                if metric != "step":
                    yield from (
                        (run, replicate, int(step), metric, value)
                        for step, value in zip(record["step"], values, strict=True)
                    )


def sweep_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A sweep's table: one row per grid point or baseline (its axis values, child job, status,
    whether it was reused, and each metric); a value that is not a number or text is written as
    JSON."""
    header = ["baseline", *result["axes"], "job", "status", "cached", *result["metrics"]]
    rows = [
        [
            row["baseline"] or "",
            *(row["values"].get(axis) for axis in result["axes"]),
            row["job"],
            row["status"],
            row["cached"],
            *(row["metrics"].get(metric) for metric in result["metrics"]),
        ]
        for row in result["rows"]
    ]
    return header, [[cell(value) for value in row] for row in rows]


def cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def csv_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The CSV a result has: a train result's trajectories, tidy (TIDY_COLUMNS), or a sweep's
    table. ValueError for a kind with neither."""
    if result.get("kind") == "sweep":
        return sweep_table(result)
    return list(TIDY_COLUMNS), [list(row) for row in trajectories(result)]


def write_csv(header: list[str], rows: Iterable[list[Any]], stream: TextIO) -> None:
    """Rows under their header; a missing value (non-finite in a run, absent in a table) is empty."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(("" if value is None else value for value in row) for row in rows)


def junit(suite: str, outcomes: list[Outcome], seconds: float) -> ET.ElementTree:
    """JUnit XML: one test case per expectation (class: the case), a `failure` for a value that
    misses its expectation, an `error` when none could be measured (the job failed, the path is
    missing)."""
    counts = {
        "tests": str(len(outcomes)),
        "failures": str(sum(not o.passed and o.error is None for o in outcomes)),
        "errors": str(sum(o.error is not None for o in outcomes)),
        "time": f"{seconds:.3f}",
    }
    root = ET.Element("testsuites", name=suite, **counts)
    group = ET.SubElement(root, "testsuite", name=suite, **counts)
    for outcome in outcomes:
        case = ET.SubElement(group, "testcase", classname=outcome.case, name=outcome.path)
        if outcome.error is not None:
            ET.SubElement(case, "error", message=outcome.error).text = f"expected {outcome.expected}"
        elif not outcome.passed:
            message = f"expected {outcome.expected}, measured {outcome.measured}"
            ET.SubElement(case, "failure", message=message).text = message
    ET.indent(root)
    return ET.ElementTree(root)
