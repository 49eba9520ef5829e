"""What the `ntkdyn` command shows: tables of jobs and of check outcomes, and a live progress bar
fed by a job's events."""

from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from schemas import JobStatus, JobView

from .checks import Outcome
from .events import Event

ACTIVE_STATUSES = (JobStatus.queued, JobStatus.running)
STATUS_STYLE = {
    JobStatus.queued: "yellow",
    JobStatus.running: "cyan",
    JobStatus.succeeded: "green",
    JobStatus.failed: "red",
    JobStatus.cancelled: "magenta",
}


def styled(status: JobStatus) -> str:
    return f"[{STATUS_STYLE[status]}]{status.value}[/]"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def job_table(view: JobView) -> Table:
    """One job, field by field."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("id", view.id),
        ("kind", view.kind),
        ("status", styled(view.status) + (" (cached)" if view.cached else "")),
        ("progress", f"{view.progress:.0%}"),
        ("message", escape(view.message)),
        ("attempts", str(view.attempts)),
        ("created", when(view.created_at)),
        ("started", when(view.started_at)),
        ("finished", when(view.finished_at)),
    ]
    if view.error:
        rows.append(("error", f"[red]{escape(view.error)}[/]"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def jobs_table(views: Iterable[JobView]) -> Table:
    """Jobs, a row each, readable at 80 columns: the whole id and status always, the message cut
    to what width is left."""
    table = Table(
        Column("id", no_wrap=True, min_width=32),
        Column("kind", no_wrap=True),
        Column("status", no_wrap=True),
        Column("done", no_wrap=True, justify="right"),
        Column("created", no_wrap=True),
        Column("message", ratio=1),  # the one column rich may narrow; its text stays one line
        box=None,
        padding=(0, 1, 0, 0),
        header_style="bold",
    )
    for view in views:
        created = "-" if view.created_at is None else view.created_at.astimezone().strftime("%m-%d %H:%M")
        table.add_row(
            view.id,
            view.kind,
            styled(view.status),
            f"{view.progress:.0%}",
            created,
            Text(view.message, no_wrap=True, overflow="ellipsis"),
        )
    return table


def top_view(readiness: dict[str, Any], active: list[JobView], now: float) -> Group:
    """What `ntkdyn top` shows: the stack's readiness, each queue's queued and running jobs
    beside its workers' job slots, the live workers with their heartbeat ages, and the running
    jobs (owner, kind, progress, message)."""
    workers = readiness.get("workers") or []
    state = "ready" if readiness.get("status") == "ready" else f"not ready: {readiness.get('reason')}"
    queues = Table("queue", "queued", "running", "workers", "slots", box=None, header_style="bold")
    names = sorted(
        {queue for worker in workers for queue in worker.get("queues", [])} | {v.queue for v in active}
    )
    for queue in names:
        serving = [worker for worker in workers if queue in worker.get("queues", [])]
        counts = [sum(v.queue == queue and v.status is status for v in active) for status in ACTIVE_STATUSES]
        slots = sum(int(worker.get("concurrency", 0)) for worker in serving)
        queues.add_row(queue, *map(str, counts), str(len(serving)), str(slots))
    beats = Table("worker", "queues", "slots", "heartbeat", box=None, header_style="bold")
    for worker in sorted(workers, key=lambda worker: worker.get("name", "")):
        age = f"{max(0.0, now - float(worker['at'])):.1f} s ago" if "at" in worker else "-"
        beats.add_row(
            worker.get("name", "?"),
            ",".join(worker.get("queues", [])),
            str(worker.get("concurrency", "?")),
            age,
        )
    running = Table(
        Column("id", no_wrap=True, min_width=32),
        Column("owner", no_wrap=True),
        Column("kind", no_wrap=True),
        Column("done", no_wrap=True, justify="right"),
        Column("message", ratio=1),
        box=None,
        padding=(0, 1, 0, 0),
        header_style="bold",
    )
    for view in active:
        if view.status is JobStatus.running:
            message = Text(view.message, no_wrap=True, overflow="ellipsis")
            running.add_row(view.id, view.owner, view.kind, f"{view.progress:.0%}", message)
    return Group(Text(state, style="bold"), queues, Text(""), beats, Text(""), running)


def check_table(outcomes: Iterable[Outcome]) -> Table:
    """Each expectation with what was measured, and whether it passed."""
    table = Table(
        "case",
        Column("path", overflow="fold"),
        "expected",
        Column("measured", overflow="fold"),
        Column("result", no_wrap=True),
        title="checks",
    )
    for outcome in outcomes:
        verdict = "[green]pass[/]" if outcome.passed else "[bold red]FAIL[/]"
        measured = escape(
            outcome.measured if outcome.error is None else f"{outcome.measured}: {outcome.error}"
        )
        table.add_row(escape(outcome.case), escape(outcome.path), escape(outcome.expected), measured, verdict)
    return table


class JobProgress:
    """A live bar of one job: status and message (the step where the job tells it), fraction
    done, elapsed time and the estimated time left. Call it with each event."""

    def __init__(self, console: Console, job_id: str) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.job_id = job_id
        self.task: TaskID | None = None

    def __enter__(self) -> "JobProgress":
        self.progress.start()
        self.task = self.progress.add_task(f"job {self.job_id}", total=1.0)
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _error: BaseException | None, _trace: TracebackType | None
    ) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        if self.task is not None:
            description = f"{styled(event.status)} {escape(event.message)}"
            self.progress.update(self.task, completed=event.progress, description=description)
