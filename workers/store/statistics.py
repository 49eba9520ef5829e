"""What the job store says about the fleet, for monitoring (/metrics): jobs queued and running
by queue and by owner, ended jobs by kind and status, failures by reason, redeliveries, and the
run time of every ended run. Aggregated in SQL where it can be; the durations and failure
reasons are read as two narrow columns and grouped here (portable across SQLite and PostgreSQL,
where the date arithmetic differs)."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from schemas.jobs import JobStatus
from workers.failures import reason_of
from workers.store.jobs import ACTIVE
from workers.store.models import JobRow


@dataclass
class Statistics:
    """Counts over the store at one moment; a sweep's parent is left out (its children count)."""

    active: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(queue, owner, status) -> queued or running jobs."""
    ended: dict[tuple[str, str], int] = field(default_factory=dict)
    """(kind, status) -> jobs that ended so."""
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    """(kind, reason) -> failed jobs (workers.failures)."""
    redeliveries: dict[str, int] = field(default_factory=dict)
    """kind -> deliveries beyond each job's first."""
    durations: dict[str, list[float]] = field(default_factory=dict)
    """kind -> seconds from start to end of each ended job that started."""


def statistics(engine: Engine) -> Statistics:
    """One snapshot (five queries)."""
    jobs = JobRow.kind != "sweep"
    active = (
        select(JobRow.queue, JobRow.owner, JobRow.status, func.count())
        .where(jobs, JobRow.status.in_(ACTIVE))
        .group_by(JobRow.queue, JobRow.owner, JobRow.status)
    )
    ended = (
        select(JobRow.kind, JobRow.status, func.count())
        .where(jobs, JobRow.status.not_in(ACTIVE))
        .group_by(JobRow.kind, JobRow.status)
    )
    failed = select(JobRow.kind, JobRow.error).where(jobs, JobRow.status == JobStatus.failed.value)
    redelivered = (
        select(JobRow.kind, func.sum(JobRow.attempts - 1))
        .where(jobs, JobRow.attempts > 1)
        .group_by(JobRow.kind)
    )
    timed = select(JobRow.kind, JobRow.started_at, JobRow.finished_at).where(
        jobs, JobRow.status.not_in(ACTIVE), JobRow.started_at.is_not(None), JobRow.finished_at.is_not(None)
    )
    durations: defaultdict[str, list[float]] = defaultdict(list)
    with engine.connect() as connection:
        result = Statistics(
            active={
                (queue, owner, status): count for queue, owner, status, count in connection.execute(active)
            },
            ended={(kind, status): count for kind, status, count in connection.execute(ended)},
            failures=dict(Counter((kind, reason_of(error)) for kind, error in connection.execute(failed))),
            redeliveries={kind: int(total) for kind, total in connection.execute(redelivered)},
        )
        for kind, started, finished in connection.execute(timed):
            durations[kind].append(max(0.0, (finished - started).total_seconds()))
    result.durations = dict(durations)
    return result
