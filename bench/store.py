"""The store's statements of a tiny job's life, prepared once (`workers.store.prepared`) against
the obvious alternative measured in the same run: the same statements built at each call through
the ORM session (the store's code before), on SQLite in a fresh folder. Each row is the median of
CALLS calls, every write on a job of its own.

    python bench/store.py
"""

import itertools
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker
from timing import median_ms

from schemas import JobStatus
from workers.store import JobRow, JobStore, make_engine, migrate
from workers.store.access import AccessStore, User, digest, parse
from workers.store.jobs import ACTIVE, RUNNING, conditional_update, finished, new_job, recent, transition
from workers.store.models import AuditRow, TokenRow, UserRow, utcnow

CALLS = 200
OWNER = "alice"


def unsaved(number: int) -> JobRow:
    spec = {"kind": "kernel", "dataset": {"name": "sphere", "n": 8, "seed": number}}
    fields = {"kind": "kernel", "spec": spec, "spec_hash": f"h{number}", "queue": "cpu", "owner": OWNER}
    return new_job(**fields, message="waiting", shared=False, flops=1e6)


class OrmStatements:
    """The statements as the store built them at each call, through an ORM session."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, row: JobRow) -> None:
        with self.sessions.begin() as session:
            session.add(row)

    def usage(self) -> None:
        active = select(func.count()).where(
            JobRow.owner == OWNER, JobRow.status.in_(ACTIVE), JobRow.kind != "sweep"
        )
        spent = select(func.coalesce(func.sum(JobRow.flops), 0.0)).where(
            *recent(OWNER, utcnow() - timedelta(days=1))
        )
        with self.sessions() as session:
            session.execute(select(active.scalar_subquery(), spent.scalar_subquery())).one()

    def get(self, job_id: str) -> None:
        with self.sessions() as session:
            session.scalar(select(JobRow).where(JobRow.id == job_id))

    def find_reusable(self, spec_hash: str) -> None:
        succeeded = JobRow.status == JobStatus.succeeded.value
        mine = and_(JobRow.owner == OWNER, JobRow.status.in_((*ACTIVE, JobStatus.succeeded.value)))
        query = select(JobRow).where(
            JobRow.spec_hash.in_([spec_hash]), or_(mine, and_(JobRow.visibility == "lab", succeeded))
        )
        with self.sessions() as session:
            session.scalars(query.order_by(JobRow.seq.desc())).all()

    def mark_dispatched(self, job_id: str) -> None:
        now = utcnow()
        waiting = (JobRow.status == JobStatus.queued.value, JobRow.dispatched_at.is_(None))
        with self.sessions.begin() as session:
            session.execute(conditional_update(job_id, *waiting, dispatched_at=now, updated_at=now))

    def start(self, job_id: str) -> None:
        now = utcnow()
        claim = {"attempts": JobRow.attempts + 1, "progress": 0.0, "message": "started"}
        with self.sessions.begin() as session:
            session.scalar(
                transition(
                    job_id,
                    JobRow.status.in_(ACTIVE),
                    ~JobRow.cancel_requested,
                    JobRow.attempts < 3,
                    status=JobStatus.running.value,
                    started_at=now,
                    updated_at=now,
                    **claim,
                )
            )

    def finish(self, job_id: str) -> None:
        ending = finished(JobStatus.succeeded, result={"eigenvalues": [1.0] * 8}, error=None)
        with self.sessions.begin() as session:
            session.scalar(transition(job_id, RUNNING, **ending))

    def authenticate(self, token: str) -> User | None:
        token_id, secret = parse(token) or ("", "")
        query = select(TokenRow, UserRow).join(UserRow, UserRow.name == TokenRow.user)
        with self.sessions() as session:
            row, user = session.execute(query.where(TokenRow.id == token_id)).one()
        return User.of(user, row.id) if row.digest == digest(secret) else None

    def record(self, target: str) -> None:
        with self.sessions.begin() as session:
            session.add(AuditRow(actor=OWNER, action="job.submit", target=target, detail="kernel, private"))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'store.db'}")
        migrate(engine)
        store, access = JobStore(engine), AccessStore(engine)
        orm = OrmStatements(sessionmaker(engine, expire_on_commit=False))
        _, token = access.create_token(OWNER, "member")
        numbers = itertools.count()
        queued = [store.create(unsaved(next(numbers))).id for _ in range(6 * CALLS)]
        ids: dict[str, Iterator[str]] = {  # a sixth each for the marks and the claims
            name: iter(queued[number * CALLS : (number + 1) * CALLS])
            for number, name in enumerate(("orm mark", "ours mark", "orm run", "ours run"))
        }
        for job_id in queued[4 * CALLS :]:  # the rest runs, for the finishes
            store.start(job_id, 3)
        started = iter(queued[4 * CALLS :])
        pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
            "create (INSERT)": (
                lambda: orm.create(unsaved(next(numbers))),
                lambda: store.create(unsaved(next(numbers))),
            ),
            "reusable jobs of an identity": (
                lambda: orm.find_reusable("h1"),
                lambda: store.find_reusable("h1", OWNER),
            ),
            "usage (two aggregates)": (orm.usage, lambda: store.usage(OWNER, utcnow() - timedelta(days=1))),
            "mark dispatched": (
                lambda: orm.mark_dispatched(next(ids["orm mark"])),
                lambda: store.mark_dispatched(next(ids["ours mark"])),
            ),
            "start (claim, RETURNING)": (
                lambda: orm.start(next(ids["orm run"])),
                lambda: store.start(next(ids["ours run"]), 3),
            ),
            "finish (RETURNING)": (
                lambda: orm.finish(next(started)),
                lambda: store.finish(next(started), JobStatus.succeeded, result={"eigenvalues": [1.0] * 8}),
            ),
            "get": (lambda: orm.get(queued[0]), lambda: store.get(queued[0])),
            "authenticate": (lambda: orm.authenticate(token), lambda: access.authenticate(token)),
            "audit entry": (
                lambda: orm.record(queued[0]),
                lambda: access.record(OWNER, "job.submit", queued[0]),
            ),
        }
        print(f"SQLite, median of {CALLS} calls each (ms)")
        print("| statement | ORM, built per call | prepared | ratio |\n|---|---|---|---|")
        totals = [0.0, 0.0]
        for name, (theirs, ours) in pairs.items():
            before, after = median_ms(theirs, CALLS), median_ms(ours, CALLS)
            totals = [totals[0] + before, totals[1] + after]
            print(f"| {name} | {before:.3f} | {after:.3f} | {before / after:.1f}x |")
        print(f"| all of them once | {totals[0]:.2f} | {totals[1]:.2f} | {totals[0] / totals[1]:.1f}x |")
        engine.dispose()


if __name__ == "__main__":
    main()
