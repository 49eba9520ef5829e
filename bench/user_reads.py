"""The reads every submit and every dispatch pass make of one user's jobs, against the obvious
alternative measured in the same run: the queries before migration 0007 (the usage's rows of the
last day loaded and summed in Python, the active count and the last dispatch read through the
user's (owner, created_at) rows, so bounded by their whole history) against ours (two aggregates
in one statement; the queue's active jobs read once; one MAX per owner from the end of (owner,
dispatched_at)), on SQLite with one user holding H finished jobs of the last day and 3 waiting.

    python bench/user_reads.py
"""

import tempfile
from datetime import timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import func, insert, select
from timing import median_ms

from schemas import JobStatus
from workers.store import JobRow, JobStore, make_engine, migrate
from workers.store.jobs import ACTIVE, new_job
from workers.store.models import utcnow

HISTORY = (1_000, 10_000, 100_000)
CALLS = 50
OWNERS = ("alice", "bob")


def fill(store: JobStore, history: int) -> None:
    """`history` finished, dispatched jobs of alice's made in the last day, then three waiting
    jobs each of alice's and bob's."""
    now = utcnow()
    done = {
        "status": JobStatus.succeeded.value,
        "queue": "cpu",
        "owner": "alice",
        "kind": "kernel",
        "spec": {},
        "progress": 1.0,
        "message": "done",
        "attempts": 1,
        "cancel_requested": False,
        "shared": False,
        "visibility": "private",
        "flops": 1.0,
        "created_at": now - timedelta(hours=1),
        "updated_at": now,
        "dispatched_at": now - timedelta(hours=1),
    }
    rows = [{**done, "id": f"old{i:07d}", "spec_hash": f"h{i}"} for i in range(history)]
    with store.engine.begin() as connection:
        connection.execute(insert(JobRow), rows)
    for owner in OWNERS:
        for i in range(3):
            fields = {"kind": "kernel", "spec": {}, "spec_hash": f"w{owner}{i}", "queue": "cpu"}
            store.create(new_job(**fields, owner=owner, message="waiting", shared=False, flops=1.0))


def before_usage(store: JobStore) -> None:
    """The submit's reads before: the active count, then every recent run's row."""
    since = utcnow() - timedelta(days=1)
    active = select(func.count()).where(
        JobRow.owner == "alice", JobRow.status.in_(ACTIVE), JobRow.kind != "sweep"
    )
    recent = select(JobRow.created_at, JobRow.flops).where(
        JobRow.owner == "alice", JobRow.created_at >= since, JobRow.flops > 0
    )
    with store.engine.connect() as connection:
        connection.execute(active).scalar()
        sum(flops for _, flops in connection.execute(recent.order_by(JobRow.created_at)))


def before_pass(store: JobStore) -> None:
    """A pass's reads before: the queue's in-flight count, the waiting jobs, then per owner the
    count in flight and the last dispatch over all of the owner's jobs."""
    flying = JobRow.status.in_(ACTIVE) & JobRow.dispatched_at.is_not(None) & (JobRow.queue == "cpu")
    waiting = (JobRow.queue == "cpu", JobRow.status == "queued", JobRow.dispatched_at.is_(None))
    with store.engine.connect() as connection:
        connection.execute(select(func.count()).where(flying)).scalar()
        rows = connection.execute(select(JobRow.id, JobRow.owner).where(*waiting).order_by(JobRow.seq)).all()
        served = select(JobRow.owner, func.count().filter(flying), func.max(JobRow.dispatched_at))
        owners = {row.owner for row in rows}
        connection.execute(served.where(JobRow.owner.in_(owners)).group_by(JobRow.owner)).all()


def ours_usage(store: JobStore) -> None:
    store.usage("alice", utcnow() - timedelta(days=1))


def ours_pass(store: JobStore) -> None:
    waiting, _ = store.queue_state("cpu")
    store.last_served({row.owner for row in waiting})


def main() -> None:
    print(
        f"one user's finished jobs of the last day (H) and 3 waiting of each of 2 users; median of {CALLS} reads (ms)"
    )
    print("| H | submit: before | ours | ratio | pass: before | ours | ratio |")
    print("|---|---|---|---|---|---|---|")
    for history in HISTORY:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'store.db'}")
            migrate(engine)
            store = JobStore(engine)
            fill(store, history)
            usage = (
                median_ms(partial(before_usage, store), CALLS),
                median_ms(partial(ours_usage, store), CALLS),
            )
            passes = (
                median_ms(partial(before_pass, store), CALLS),
                median_ms(partial(ours_pass, store), CALLS),
            )
            engine.dispose()
        cells = [f"{before:.3f} | {ours:.3f} | {before / ours:.1f}x" for before, ours in (usage, passes)]
        print(f"| {history:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
