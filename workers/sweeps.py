"""Sweeps in the store: a parent job waits for its children, reports the share of them done and,
when the last one ends, becomes `succeeded` with the table of their metrics.

No worker runs a parent. Each child's worker advances its parent when the child ends; the API's
reconciler advances every running sweep on each pass too, so a notification lost to a crash only
delays the table. Both may race: the parent's final write is one conditional update, so the
table is written once. No torch here: the API imports this module.
"""

import itertools
import statistics
from typing import Any

from schemas.jobs import JobStatus
from schemas.paths import PathError, is_number, resolve
from schemas.sweep import Metric, SweepResult, SweepRow, SweepSpec, Trend
from workers.events import EventLog
from workers.store import JobRow, JobStore

TREND_TAU = 0.5
"""|Kendall tau| from which a metric is said to go up or down along an axis."""


def metric(child: JobRow, column: Metric) -> Any:
    """The column's value in a child's result (None without a result, without a path for its
    kind, or where the path stops), reduced when asked."""
    path = column.path_for(child.kind)
    if child.result is None or path is None:
        return None
    try:
        value = resolve(child.result, path)
    except PathError:
        return None
    if column.reduce == "none" or is_number(value):
        return value
    numbers = [float(item) for item in value if is_number(item)] if isinstance(value, list) else []
    if not numbers:
        return None
    return {"mean": statistics.fmean, "min": min, "max": max}[column.reduce](numbers)


def kendall_tau(pairs: list[tuple[float, float]]) -> float | None:
    """(concordant - discordant) / (pairs tied in neither coordinate); None with none such."""
    concordant = discordant = 0
    for (x1, y1), (x2, y2) in itertools.combinations(pairs, 2):
        sign = (x1 - x2) * (y1 - y2)
        concordant += sign > 0
        discordant += sign < 0
    counted = concordant + discordant
    return (concordant - discordant) / counted if counted else None


def trends(spec: SweepSpec, rows: list[SweepRow]) -> list[Trend]:
    """For each numeric axis and each metric, which way the metric moves along the axis."""
    found = []
    for axis in spec.axes:
        if not all(is_number(value) for value in axis.values):
            continue
        for column in spec.metrics:
            pairs = [
                (float(row.values[axis.path]), float(row.metrics[column.name]))
                for row in rows
                if row.baseline is None and is_number(row.metrics[column.name])
            ]
            tau = kendall_tau(pairs) if len(pairs) >= 3 else None
            direction = (
                "undetermined"
                if tau is None
                else "up"
                if tau >= TREND_TAU
                else "down"
                if tau <= -TREND_TAU
                else "none"
            )
            found.append(Trend(axis=axis.path, metric=column.name, tau=tau, direction=direction))
    return found


def table(parent: JobRow, children: list[JobRow]) -> SweepResult:
    """The sweep's result from its finished children (in grid order)."""
    spec = SweepSpec.model_validate(parent.spec)
    rows = [
        SweepRow(
            values=values,
            baseline=baseline,
            job=child.id,
            status=child.status,
            cached=child.parent_id != parent.id,
            metrics={column.name: metric(child, column) for column in spec.metrics},
            error=child.error,
        )
        for (values, baseline), child in zip(spec.labels(), children, strict=True)
    ]
    counts = {status.value: sum(row.status == status.value for row in rows) for status in JobStatus}
    return SweepResult(
        axes=[axis.path for axis in spec.axes],
        metrics=[column.name for column in spec.metrics],
        rows=rows,
        counts={status: count for status, count in counts.items() if count},
        trends=trends(spec, rows),
    )


def advance(store: JobStore, parent: JobRow, events: EventLog) -> None:
    """Bring a running sweep up to date with its children: its progress (counted in the store,
    no child loaded), or, once all have ended, its table and the status `succeeded` (each
    child's own status is in the table)."""
    if parent.status != JobStatus.running.value or parent.children is None:
        return
    done, total = store.count_finished(parent.children), len(parent.children)
    if done < total:
        if done / total != parent.progress:
            message = f"{done}/{total} children done"
            store.report(parent.id, done / total, message)
            events.progress(parent.id, done / total, message)
        return
    result = table(parent, store.many(parent.children)).model_dump(mode="json")
    if store.finish(parent.id, JobStatus.succeeded, result=result):
        events.status(store.get(parent.id))


def cancel(store: JobStore, parent: JobRow, events: EventLog) -> JobRow | None:
    """Cancel a running sweep: the parent first (one conditional update, so a child ending
    meanwhile cannot finish it with a table), then each unfinished child as a job of its own.
    None when the sweep was no longer running."""
    if not store.finish(parent.id, JobStatus.cancelled):
        return None
    for child in store.many(parent.children or []):
        if child.parent_id == parent.id and not JobStatus(child.status).finished:
            events.status(store.cancel(child.id))
    row = store.get(parent.id)
    events.status(row)
    return row
