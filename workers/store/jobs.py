"""Job store operations. Every state change is one conditional UPDATE, so concurrent or
redelivered tasks cannot move a finished job: its result is written once."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from schemas.jobs import JobStatus
from workers.store.models import JobRow, utcnow

ACTIVE = (JobStatus.queued.value, JobStatus.running.value)


class JobStore:
    """The source of truth for jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def create(
        self, *, kind: str, spec: dict[str, Any], spec_hash: str, queue: str, owner: str, message: str
    ) -> JobRow:
        row = JobRow(
            id=uuid.uuid4().hex,
            owner=owner,
            kind=kind,
            spec=spec,
            spec_hash=spec_hash,
            queue=queue,
            status=JobStatus.queued.value,
            progress=0.0,
            message=message,
            attempts=0,
            cancel_requested=False,
        )
        with self._sessions.begin() as session:
            session.add(row)
        return row

    def get(self, job_id: str) -> JobRow | None:
        with self._sessions() as session:
            return session.scalar(select(JobRow).where(JobRow.id == job_id))

    def find_succeeded(self, spec_hash: str) -> JobRow | None:
        """The newest succeeded job with this identity, if any."""
        query = (
            select(JobRow)
            .where(JobRow.spec_hash == spec_hash, JobRow.status == JobStatus.succeeded.value)
            .order_by(JobRow.seq.desc())
            .limit(1)
        )
        with self._sessions() as session:
            return session.scalar(query)

    def page(
        self, *, status: str | None, kind: str | None, limit: int, before_seq: int | None
    ) -> Sequence[JobRow]:
        """Up to `limit` jobs, newest first, older than `before_seq` when given."""
        query = select(JobRow).order_by(JobRow.seq.desc()).limit(limit)
        if status is not None:
            query = query.where(JobRow.status == status)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        if before_seq is not None:
            query = query.where(JobRow.seq < before_seq)
        with self._sessions() as session:
            return session.scalars(query).all()

    def active_before(self, cutoff: datetime) -> Sequence[JobRow]:
        """Queued or running jobs last updated before `cutoff`."""
        query = select(JobRow).where(JobRow.status.in_(ACTIVE), JobRow.updated_at < cutoff)
        with self._sessions() as session:
            return session.scalars(query.order_by(JobRow.seq)).all()

    def start(self, job_id: str, max_attempts: int) -> JobRow | None:
        """Claim a delivery of the job: queued/running -> running, attempts + 1.

        Returns None when the job has finished (a redelivered task does nothing) or when this
        delivery would exceed `max_attempts` (the job is then failed)."""
        with self._sessions.begin() as session:
            row = session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
            if row is None or row.status not in ACTIVE:
                return None
            if row.cancel_requested:
                self._finish(session, row, JobStatus.cancelled, error=None)
                return None
            if row.attempts >= max_attempts:
                error = f"gave up after {row.attempts} attempts (the worker died each time)"
                self._finish(session, row, JobStatus.failed, error=error)
                return None
            row.status = JobStatus.running.value
            row.attempts += 1
            row.started_at = utcnow()
            row.updated_at = row.started_at
            row.message = f"attempt {row.attempts} started"
            return row

    def report(self, job_id: str, progress: float, message: str) -> bool:
        """Write progress of a running job; returns True when a cancel was requested."""
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.running.value)
                .values(progress=min(max(progress, 0.0), 1.0), message=message[:500], updated_at=utcnow())
            )
            requested = session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id))
        return bool(requested)

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """running -> a finished status, once; False if the job was not running."""
        with self._sessions.begin() as session:
            row = session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
            if row is None or row.status != JobStatus.running.value:
                return False
            self._finish(session, row, status, error=error, result=result)
            return True

    @staticmethod
    def _finish(
        session: Session,
        row: JobRow,
        status: JobStatus,
        *,
        error: str | None,
        result: dict[str, Any] | None = None,
    ) -> None:
        now = utcnow()
        row.status = status.value
        row.finished_at = now
        row.updated_at = now
        row.result = result
        row.error = error
        row.message = {
            JobStatus.succeeded: "done",
            JobStatus.failed: "failed",
            JobStatus.cancelled: "cancelled",
        }[status]
        if status is JobStatus.succeeded:
            row.progress = 1.0

    def cancel(self, job_id: str) -> JobRow | None:
        """A queued job ends cancelled at once; a running one is flagged and stops at its next
        progress check. Finished jobs are left as they are."""
        with self._sessions.begin() as session:
            row = session.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
            if row is None:
                return None
            if row.status == JobStatus.queued.value:
                self._finish(session, row, JobStatus.cancelled, error=None)
            elif row.status == JobStatus.running.value:
                row.cancel_requested = True
                row.updated_at = utcnow()
                row.message = "cancel requested"
            return row
