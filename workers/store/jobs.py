"""Job store operations. Every state change is one conditional UPDATE (... RETURNING), atomic on
SQLite and PostgreSQL alike, so concurrent or redelivered tasks and cancels cannot interleave
into a wrong state, and a result is written once."""

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Engine, Update, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from schemas.jobs import JobStatus
from workers import failures
from workers.store import prepared
from workers.store.models import JobRow, newest_first, utcnow
from workers.store.prepared import ACTIVE, columns_of, job_of, recent

NEVER = datetime.min.replace(tzinfo=UTC)
"""When a user who was never dispatched to was last served: before everyone else."""
RACE_TRIES = 5
"""Rounds of find-then-insert a submit may lose to identical submits before giving up."""
RUNNING = JobRow.status == JobStatus.running.value
FINISHED_MESSAGE = {JobStatus.succeeded: "done", JobStatus.failed: "failed", JobStatus.cancelled: "cancelled"}


def finished(status: JobStatus, **values: Any) -> dict[str, Any]:
    """Column values of a job that ends with `status`."""
    now = utcnow()
    ending = {
        "status": status.value,
        "finished_at": now,
        "updated_at": now,
        "message": FINISHED_MESSAGE[status],
    }
    if status is JobStatus.succeeded:
        ending["progress"] = 1.0
    return {**ending, **values}


def new_job(
    *,
    kind: str,
    spec: dict[str, Any],
    spec_hash: str,
    queue: str,
    owner: str,
    message: str,
    shared: bool,
    visibility: str = "private",
    flops: float = 0.0,
) -> JobRow:
    """A queued job, not yet stored; `shared`: its owner's identical submits may answer with it;
    `visibility` lab: every user may read it and reuse its result; `flops`: its estimated
    compute, counted against its owner's daily quota."""
    return JobRow(
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
        shared=shared,
        visibility=visibility,
        flops=flops,
    )


def reused(row: JobRow, source: JobRow) -> JobRow:
    """`row`'s owner's own succeeded job that carries another user's lab-visible result (a copy,
    so every reader of a result finds it on the row) and names its source."""
    now = utcnow()
    copy = new_job(
        kind=row.kind,
        spec=row.spec,
        spec_hash=row.spec_hash,
        queue=row.queue,
        owner=row.owner,
        message=f"reused the lab's job {source.id}",
        shared=False,
        visibility=row.visibility,
    )
    copy.status, copy.progress, copy.result, copy.source_id = (
        JobStatus.succeeded.value,
        1.0,
        source.result,
        source.id,
    )
    copy.started_at = copy.finished_at = now
    return copy


def conditional_update(job_id: str, *conditions: ColumnElement[bool], **values: Any) -> Update:
    """UPDATE the job WHERE all conditions hold."""
    statement = update(JobRow).where(JobRow.id == job_id, *conditions).values(**values)
    return statement.execution_options(synchronize_session=False)


def transition(job_id: str, *conditions: ColumnElement[bool], **values: Any) -> Update:
    """UPDATE the job WHERE all conditions hold, RETURNING the updated row."""
    return conditional_update(job_id, *conditions, **values).returning(JobRow)


class Waiting(NamedTuple):
    """A job waiting for a worker, as the dispatcher needs it."""

    id: str
    owner: str


class QueueState(NamedTuple):
    """A queue's jobs as the dispatcher needs them: those waiting, oldest first, and per owner
    the number sent to the queue and not yet ended."""

    waiting: list[Waiting]
    in_flight: Counter[str]


class Usage(NamedTuple):
    """What counts against a user's quotas: their queued and running jobs and the estimated flop
    of their recent ones."""

    active: int
    flops: float


def fair_order(
    waiting: Sequence[Waiting], in_flight: dict[str, int], last: dict[str, datetime | None], count: int
) -> list[Waiting]:
    """Pick `count` of the `waiting` jobs (oldest first per owner): each pick from the owner with
    the fewest jobs in flight, ties to the owner served longest ago (never: first), who then
    counts one more in flight and as served last."""
    queues: dict[str, list[Waiting]] = {}
    for row in waiting:
        queues.setdefault(row.owner, []).append(row)
    flying = {owner: in_flight.get(owner, 0) for owner in queues}
    served = {owner: last.get(owner) or NEVER for owner in queues}
    now = max([*served.values(), utcnow()])
    picked: list[Waiting] = []
    while len(picked) < count and any(queues.values()):
        owner = min((o for o, rows in queues.items() if rows), key=lambda o: (flying[o], served[o]))
        picked.append(queues[owner].pop(0))
        flying[owner] += 1
        served[owner] = now + timedelta(microseconds=len(picked))  # served last, in pick order
    return picked


class JobStore:
    """The source of truth for jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def create(self, row: JobRow) -> JobRow:
        """Store a new job; the stored row. A shared job whose identity another shared job holds
        while queued or running violates the unique index: IntegrityError, and nothing is stored."""
        with self.engine.begin() as connection:
            return job_of(connection.execute(prepared.INSERT_JOB, columns_of(row)).one())

    def find_or_create(self, row: JobRow, admit: Callable[[], None] = lambda: None) -> tuple[JobRow, bool]:
        """The job that answers a submit: for a shared `row`, its owner's identical job that has
        succeeded or is still queued or running, or a copy of another user's lab-visible result
        (`reused`, the owner's own row); else `row`, stored. Two racing submits of one owner
        store one row: the loser's INSERT hits the unique index and it then finds the winner's.
        `admit()` runs just before `row` is stored, and may raise to refuse it (a quota).
        Returns (the job, whether it is `row`, newly queued)."""
        for _ in range(RACE_TRIES):
            if row.shared and (hit := self.find_reusable(row.spec_hash, row.owner)) is not None:
                return (hit if hit.owner == row.owner else self.create(reused(row, hit))), False
            admit()
            try:
                return self.create(row), True
            except IntegrityError:  # an identical shared job was stored meanwhile: find it
                continue
        raise RuntimeError(f"no stable answer for identity {row.spec_hash} after {RACE_TRIES} tries")

    def create_sweep(self, parent: JobRow, children: list[JobRow | str]) -> list[JobRow]:
        """Store a sweep and its new children in one transaction: the parent (running: it runs
        nowhere, it waits for its children) lists every child id in grid order, reused jobs
        (given by id) included; the new children name the parent (a child that stands for
        several grid points is listed at each). Returns the new ones. IntegrityError when a new
        shared child's identity is taken meanwhile: nothing is stored."""
        created = list(dict.fromkeys(child for child in children if isinstance(child, JobRow)))
        for child in created:
            child.parent_id = parent.id
        parent.children = [child if isinstance(child, str) else child.id for child in children]
        parent.status, parent.started_at = JobStatus.running.value, utcnow()
        with self._sessions.begin() as session:
            session.add_all([parent, *created])
        return created

    def many(self, job_ids: list[str]) -> list[JobRow]:
        """The jobs with these ids, in the order given (missing ones left out)."""
        with self._sessions() as session:
            rows = {row.id: row for row in session.scalars(select(JobRow).where(JobRow.id.in_(job_ids)))}
        return [rows[job_id] for job_id in job_ids if job_id in rows]

    def usage(self, owner: str, since: datetime) -> Usage:
        """What counts against `owner`'s quotas, in one statement of two aggregates, each read
        through an index of the owner's (so bounded by what they have active and ran since
        `since`, not by their history): their queued and running jobs (a sweep's parent aside:
        its children count) and the estimated flop of their jobs made since `since`."""
        with self.engine.connect() as connection:
            count, flops = connection.execute(prepared.USAGE, {"owner": owner, "since": since}).one()
        return Usage(count, float(flops))

    def recent_runs(self, owner: str, since: datetime) -> list[tuple[datetime, float]]:
        """(creation time, estimated flop) of `owner`'s jobs made since `since`, oldest first:
        read only when a quota refuses a submit, for its Retry-After."""
        runs = select(JobRow.created_at, JobRow.flops).where(*recent(owner, since))
        with self._sessions() as session:
            return [(at, flops) for at, flops in session.execute(runs.order_by(JobRow.created_at))]

    def count_finished(self, job_ids: list[str]) -> int:
        """How many of the jobs with these ids have ended (one COUNT, no rows loaded)."""
        query = select(func.count()).where(JobRow.id.in_(job_ids), JobRow.status.not_in(ACTIVE))
        with self._sessions() as session:
            return session.scalar(query) or 0

    def running_sweeps(self) -> list[JobRow]:
        with self.engine.connect() as connection:
            return [job_of(row) for row in connection.execute(prepared.RUNNING_SWEEPS)]

    def sweeps_waiting_for(self, job_id: str) -> list[JobRow]:
        """The running sweeps that list this job among their children: its parent, and sweeps
        that reused it while it was queued or running."""
        return [sweep for sweep in self.running_sweeps() if job_id in (sweep.children or [])]

    def get(self, job_id: str) -> JobRow | None:
        with self.engine.connect() as connection:
            row = connection.execute(prepared.GET_JOB, {"job_id": job_id}).first()
        return None if row is None else job_of(row)

    def find_reusable(self, spec_hash: str, owner: str) -> JobRow | None:
        """The job that answers this identity for `owner`, if any (`find_reusable_many`)."""
        return self.find_reusable_many([spec_hash], owner).get(spec_hash)

    def find_reusable_many(self, spec_hashes: list[str], owner: str) -> dict[str, JobRow]:
        """identity -> the job that answers it for `owner`: their newest succeeded job with it,
        else the newest lab-visible success of another user, else their oldest job still queued
        or running; for those of `spec_hashes` that have one (one query)."""

        def rank(row: JobRow) -> int:
            if row.status != JobStatus.succeeded.value:
                return 2
            return 0 if row.owner == owner else 1

        found: dict[str, JobRow] = {}
        with self.engine.connect() as connection:
            candidates = connection.execute(prepared.REUSABLE, {"hashes": spec_hashes, "owner": owner})
            for row in map(job_of, candidates):  # newest first; an older active job replaces a newer
                held = found.get(row.spec_hash)
                if held is None or rank(row) < rank(held) or (rank(row) == rank(held) == 2):
                    found[row.spec_hash] = row
        return found

    def page(
        self,
        *,
        status: str | None,
        kind: str | None,
        limit: int,
        before_seq: int | None,
        owner: str | None = None,
        visible_to: str | None = None,
    ) -> Sequence[JobRow]:
        """Up to `limit` jobs, newest first, older than `before_seq` when given; of `owner` when
        given; and with `visible_to`, only that user's own jobs and the lab-visible ones."""
        query = newest_first(JobRow, limit, before_seq, owner=owner, status=status, kind=kind)
        if visible_to is not None:
            query = query.where(or_(JobRow.owner == visible_to, JobRow.visibility == "lab"))
        with self._sessions() as session:
            return session.scalars(query).all()

    def active_before(self, cutoff: datetime, queues: Sequence[str]) -> Sequence[JobRow]:
        """Dispatched, queued or running jobs of these queues last updated before `cutoff`."""
        query = select(JobRow).where(
            JobRow.status.in_(ACTIVE),
            JobRow.dispatched_at.is_not(None),
            JobRow.updated_at < cutoff,
            JobRow.queue.in_(queues),
        )
        with self._sessions() as session:
            return session.scalars(query.order_by(JobRow.seq)).all()

    def queue_state(self, queue: str) -> QueueState:
        """`queue`'s waiting jobs (oldest first) and, per owner, its jobs in flight: one read of
        the queue's active jobs (through (queue, status): bounded by what is active)."""
        waiting: list[Waiting] = []
        in_flight: Counter[str] = Counter()
        with self.engine.connect() as connection:
            for job_id, owner, status, dispatched_at in connection.execute(
                prepared.QUEUE_STATE, {"queue": queue}
            ):
                if dispatched_at is not None:
                    in_flight[owner] += 1
                elif status == JobStatus.queued.value:
                    waiting.append(Waiting(job_id, owner))
        return QueueState(waiting, in_flight)

    def last_served(self, owners: set[str]) -> dict[str, datetime | None]:
        """When each owner's newest job was sent to a queue (None: never); one MAX per owner,
        read from the end of the (owner, dispatched_at) index, in one statement."""
        order = sorted(owners)
        newest = [
            select(func.max(JobRow.dispatched_at)).where(JobRow.owner == owner).scalar_subquery()
            for owner in order
        ]
        with self._sessions() as session:
            return dict(zip(order, session.execute(select(*newest)).one(), strict=True))

    def mark_dispatched(self, job_id: str) -> bool:
        """queued and waiting -> dispatched, once; False if it was taken, cancelled or sent."""
        with self.engine.begin() as connection:
            marked = connection.execute(prepared.MARK_DISPATCHED, {"job_id": job_id, "now": utcnow()})
            return marked.rowcount == 1

    def undo_dispatch(self, job_id: str) -> bool:
        """dispatched and still queued -> waiting again (its message never reached the broker),
        for the next pass to send; False if a worker has it already or it ended."""
        queued = (JobRow.status == JobStatus.queued.value, JobRow.dispatched_at.is_not(None))
        with self.engine.begin() as connection:
            undone = connection.execute(
                conditional_update(job_id, *queued, dispatched_at=None, updated_at=utcnow())
            )
            return undone.rowcount == 1

    def _transition(self, job_id: str, *conditions: ColumnElement[bool], **values: Any) -> JobRow | None:
        """UPDATE the job WHERE all conditions hold, in a transaction of its own; the updated
        row, or None if none matched."""
        with self._sessions.begin() as session:
            return session.scalar(transition(job_id, *conditions, **values))

    def start(self, job_id: str, max_attempts: int) -> JobRow | None:
        """Claim a delivery of the job: queued/running -> running, attempts + 1, progress 0.

        Returns None when there is nothing to run: the job has finished (a redelivered task does
        nothing), a cancel was requested (it ends cancelled), or this delivery would exceed
        `max_attempts` (it ends failed). One transaction; the claim, the common case, is its
        first statement (the three conditions exclude one another, so the order is free)."""
        active = JobRow.status.in_(ACTIVE)
        error = f"{failures.GAVE_UP} {max_attempts} attempts (the worker died or was killed each time)"
        claim = {"job_id": job_id, "max_attempts": max_attempts, "now": utcnow()}
        with self.engine.begin() as connection:  # one transaction: one commit on the hot path
            claimed = connection.execute(prepared.START, claim).first()
            if claimed is not None:
                return job_of(claimed)
            cancelled = finished(JobStatus.cancelled)
            connection.execute(conditional_update(job_id, active, JobRow.cancel_requested, **cancelled))
            gave_up = finished(JobStatus.failed, error=error)
            connection.execute(conditional_update(job_id, active, JobRow.attempts >= max_attempts, **gave_up))
            return None

    def report(self, job_id: str, progress: float, message: str) -> bool:
        """Write progress of a running job; returns True when a cancel was requested."""
        row = self._transition(
            job_id,
            RUNNING,
            progress=min(max(progress, 0.0), 1.0),
            message=message[:500],
            updated_at=utcnow(),
        )
        return row is not None and row.cancel_requested

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> JobRow | None:
        """running -> a finished status, once: the finished row; None if the job was not running."""
        ending = {"end_progress": None} | {
            f"end_{column}": value for column, value in finished(status, result=result, error=error).items()
        }
        with self.engine.begin() as connection:
            row = connection.execute(prepared.FINISH, {"job_id": job_id, **ending}).first()
        return None if row is None else job_of(row)

    def cancel(self, job_id: str) -> JobRow | None:
        """A queued job ends cancelled at once; a running one is flagged and stops at its next
        progress check. Returns the job as it is afterwards (finished jobs are left alone)."""
        queued = JobRow.status == JobStatus.queued.value
        row = self._transition(job_id, queued, **finished(JobStatus.cancelled))
        if row is None:
            now = utcnow()
            row = self._transition(
                job_id, RUNNING, cancel_requested=True, message="cancel requested", updated_at=now
            )
        return row or self.get(job_id)
