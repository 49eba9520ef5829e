"""The statements of a job's life, built once with bind parameters and run on Core connections.

A tiny job passes through about a dozen statements between its submit and its answer: the
token's lookup at each request, the identity's reusable jobs, the owner's usage, the insert, the
audit entry, the queue's state, the dispatch mark, the worker's claim and finish, the reads that
answer. Built anew at
each call through the ORM, each spent 0.15-0.45 ms building SQL, deriving its cache key and
loading objects around 0.05-0.13 ms of SQLite work; built once and run on a connection, the claim
takes 0.15 ms instead of 0.60 (`bench/store.py`). Every other statement of the store is written
through the ORM where it is used.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from schemas.jobs import JobStatus
from workers.store.models import AuditRow, JobRow, TokenRow, UserRow

JOBS = JobRow.__table__.c
ACTIVE = tuple(status.value for status in JobStatus if not status.finished)

INSERT_JOB = insert(JobRow.__table__).returning(*JOBS)
"""A new job from its column values (those left out take their defaults); the stored row."""

REUSABLE = (
    select(*JOBS)
    .where(
        JOBS.spec_hash.in_(bindparam("hashes", expanding=True)),
        or_(
            and_(JOBS.owner == bindparam("owner"), JOBS.status.in_((*ACTIVE, JobStatus.succeeded.value))),
            and_(JOBS.visibility == "lab", JOBS.status == JobStatus.succeeded.value),
        ),
    )
    .order_by(JOBS.seq.desc())
)
"""The jobs that may answer these identities for `owner`, newest first: theirs that succeeded or
are still queued or running, and the lab-visible successes of everyone."""

GET_JOB = select(*JOBS).where(JOBS.id == bindparam("job_id"))


def recent(
    owner: str | BindParameter[str], since: datetime | BindParameter[datetime]
) -> tuple[ColumnElement[bool], ...]:
    """`owner`'s runs made since `since` (what their daily compute quota counts)."""
    return JOBS.owner == owner, JOBS.created_at >= since, JOBS.flops > 0


USAGE = select(
    select(func.count())
    .where(JOBS.owner == bindparam("owner"), JOBS.status.in_(ACTIVE), JOBS.kind != "sweep")
    .scalar_subquery(),
    select(func.coalesce(func.sum(JOBS.flops), 0.0))
    .where(*recent(bindparam("owner"), bindparam("since")))
    .scalar_subquery(),
)
"""An owner's queued and running jobs (a sweep's parent aside) and the flop of their runs made
since `since`: two aggregates, each through an index of the owner's."""

QUEUE_STATE = (
    select(JOBS.id, JOBS.owner, JOBS.status, JOBS.dispatched_at)
    .where(JOBS.queue == bindparam("queue"), JOBS.status.in_(ACTIVE))
    .order_by(JOBS.seq)
)

RUNNING_SWEEPS = (
    select(*JOBS).where(JOBS.kind == "sweep", JOBS.status == JobStatus.running.value).order_by(JOBS.seq)
)

MARK_DISPATCHED = (
    update(JobRow.__table__)
    .where(
        JOBS.id == bindparam("job_id"), JOBS.status == JobStatus.queued.value, JOBS.dispatched_at.is_(None)
    )
    .values(dispatched_at=bindparam("now"), updated_at=bindparam("now"))
)

START = (
    update(JobRow.__table__)
    .where(
        JOBS.id == bindparam("job_id"),
        JOBS.status.in_(ACTIVE),
        ~JOBS.cancel_requested,
        JOBS.attempts < bindparam("max_attempts"),
    )
    .values(
        status=JobStatus.running.value,
        attempts=JOBS.attempts + 1,
        progress=0.0,
        message="started",
        started_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(*JOBS)
)
"""A delivery's claim: an active job, not cancelled and under `max_attempts`, runs."""

FINISH = (
    update(JobRow.__table__)
    .where(JOBS.id == bindparam("job_id"), JOBS.status == JobStatus.running.value)
    .values(
        status=bindparam("end_status"),
        progress=func.coalesce(bindparam("end_progress", type_=JOBS.progress.type), JOBS.progress),
        message=bindparam("end_message"),
        result=bindparam("end_result"),
        error=bindparam("end_error"),
        finished_at=bindparam("end_finished_at"),
        updated_at=bindparam("end_updated_at"),
    )
    .returning(*JOBS)
)
"""running -> finished, once, with the values of `jobs.finished` as `end_<column>` (a progress
it leaves out stays as it was)."""

TOKEN_USER = (
    select(
        TokenRow.digest,
        TokenRow.revoked_at,
        UserRow.name,
        UserRow.role,
        UserRow.max_active_jobs,
        UserRow.max_daily_flops,
    )
    .join(UserRow, UserRow.name == TokenRow.user)
    .where(TokenRow.id == bindparam("token_id"))
)

INSERT_AUDIT = insert(AuditRow.__table__)


def job_of(row: Row[Any]) -> JobRow:
    """The job of a row read through these statements (not attached to any session)."""
    return JobRow(**row._mapping)


def columns_of(job: JobRow) -> dict[str, Any]:
    """The column values a new job was given (unset ones take their defaults when stored)."""
    return {column.key: value for column in JOBS if (value := getattr(job, column.key)) is not None}
