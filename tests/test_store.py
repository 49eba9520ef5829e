"""The job store on SQLite and PostgreSQL: transitions happen once, in the right order."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import redis
from celery import Celery
from kombu.exceptions import OperationalError
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.jobs import JobStatus
from workers.dispatch import Dispatcher
from workers.heartbeat import PREFIX, publish
from workers.store import JobRow, JobStore, migrate
from workers.store.access import AccessStore, User
from workers.store.jobs import Usage, Waiting, fair_order
from workers.store.jobs import new_job as make_job


def unsaved(
    spec_hash: str = "h",
    kind: str = "kernel",
    shared: bool = False,
    owner: str = "anonymous",
    visibility: str = "private",
) -> JobRow:
    return make_job(
        kind=kind,
        spec={"kind": kind},
        spec_hash=spec_hash,
        queue="cpu",
        owner=owner,
        message="",
        shared=shared,
        visibility=visibility,
    )


def new_job(store: JobStore, spec_hash: str = "h", kind: str = "kernel") -> str:
    return store.create(unsaved(spec_hash, kind)).id


def test_migrations_are_idempotent_and_create_the_table(store: JobStore) -> None:
    migrate(store.engine)
    columns = {column["name"] for column in inspect(store.engine).get_columns("jobs")}
    assert {"owner", "spec", "spec_hash", "status", "progress", "attempts", "result", "error"} <= columns


def test_lifecycle_writes_the_result_once(store: JobStore) -> None:
    job_id = new_job(store)
    row = store.get(job_id)
    assert row.status == "queued" and row.owner == "anonymous" and row.created_at.tzinfo is not None
    started = store.start(job_id, max_attempts=3)
    assert started.status == "running" and started.attempts == 1
    assert store.report(job_id, 0.5, "half way") is False
    assert store.get(job_id).progress == 0.5
    assert store.finish(job_id, JobStatus.succeeded, result={"answer": 42}) is not None
    assert store.finish(job_id, JobStatus.failed, error="late duplicate") is None
    assert store.start(job_id, max_attempts=3) is None
    row = store.get(job_id)
    assert (row.status, row.result, row.error, row.progress) == ("succeeded", {"answer": 42}, None, 1.0)
    assert row.finished_at >= row.started_at >= row.created_at


def test_a_failure_keeps_the_progress_it_reached_and_says_why(store: JobStore) -> None:
    job_id = new_job(store)
    store.start(job_id, max_attempts=3)
    store.report(job_id, 0.25, "a quarter")
    ended = store.finish(job_id, JobStatus.failed, error="boom")
    assert (ended.status, ended.progress, ended.message, ended.error, ended.result) == (
        "failed",
        0.25,
        "failed",
        "boom",
        None,
    )
    assert ended.finished_at is not None and ended.finished_at.tzinfo is not None


def test_prepared_reads_give_every_column_as_the_orm_reads_it(store: JobStore) -> None:
    """The rows of the hot path's prepared statements (workers.store.prepared) against the ORM's
    own read of the same job: every column, with its type (zone-aware times, JSON, booleans)."""
    job_id = new_job(store)
    store.mark_dispatched(job_id)
    returned = store.start(job_id, max_attempts=3)
    finished = store.finish(job_id, JobStatus.succeeded, result={"eigenvalues": [1.5, 2.0], "ok": True})
    with Session(store.engine) as session:
        orm = session.scalar(select(JobRow).where(JobRow.id == job_id))
    columns = [column.key for column in JobRow.__table__.columns]
    assert {c: getattr(store.get(job_id), c) for c in columns} == {c: getattr(orm, c) for c in columns}
    assert {c: getattr(finished, c) for c in columns} == {c: getattr(orm, c) for c in columns}
    assert returned.status == "running" and returned.dispatched_at == orm.dispatched_at


def test_redelivery_counts_attempts_and_gives_up(store: JobStore) -> None:
    job_id = new_job(store)
    assert store.start(job_id, max_attempts=2).attempts == 1
    assert store.start(job_id, max_attempts=2).attempts == 2
    assert store.start(job_id, max_attempts=2) is None
    row = store.get(job_id)
    assert row.status == "failed" and "gave up after 2 attempts" in row.error


def test_cancel_queued_ends_it_and_it_never_starts(store: JobStore) -> None:
    job_id = new_job(store)
    assert store.cancel(job_id).status == "cancelled"
    assert store.start(job_id, max_attempts=3) is None
    assert store.get(job_id).attempts == 0


def test_cancel_running_is_seen_by_the_next_report(store: JobStore) -> None:
    job_id = new_job(store)
    store.start(job_id, max_attempts=3)
    row = store.cancel(job_id)
    assert row.status == "running" and row.cancel_requested
    assert store.report(job_id, 0.7, "still going") is True
    assert store.finish(job_id, JobStatus.cancelled)
    assert store.get(job_id).status == "cancelled"


def test_reuse_finds_succeeded_then_active_jobs_never_failed_ones(store: JobStore) -> None:
    failed, cancelled = new_job(store, spec_hash="same"), new_job(store, spec_hash="same")
    store.start(failed, 3)
    store.finish(failed, JobStatus.failed, error="boom")
    store.cancel(cancelled)
    assert store.find_reusable("same", "anonymous") is None
    queued, running = new_job(store, spec_hash="same"), new_job(store, spec_hash="same")
    store.start(running, 3)
    assert store.find_reusable("same", "anonymous").id == queued  # the oldest active one
    store.start(queued, 3)
    store.finish(queued, JobStatus.succeeded, result={})
    assert store.find_reusable("same", "anonymous").id == queued  # a success beats a run in progress
    assert store.find_reusable("other", "anonymous") is None


def test_reuse_of_many_identities_takes_the_newest_success_of_each(store: JobStore) -> None:
    older, newer, other = (new_job(store, spec_hash=identity) for identity in ("a", "a", "b"))
    for job_id in (older, newer, other):
        store.start(job_id, 3)
        store.finish(job_id, JobStatus.succeeded, result={})
    new_job(store, spec_hash="a")  # queued after them: the successes still answer
    hits = store.find_reusable_many(["a", "b", "c"], "anonymous")
    assert {identity: row.id for identity, row in hits.items()} == {"a": newer, "b": other}


def test_fifty_identical_submits_at_once_store_one_job(store: JobStore) -> None:
    """Every thread finds nothing, then INSERTs: the unique index on active shared identities
    lets one through, and the others find it."""
    submits = 50
    barrier = threading.Barrier(submits)

    def submit(_: int) -> tuple[str, bool]:
        barrier.wait()
        row, created = store.find_or_create(unsaved("hot", shared=True))
        return row.id, created

    with ThreadPoolExecutor(submits) as pool:
        answers = list(pool.map(submit, range(submits)))
    assert len({job_id for job_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert len(store.page(status=None, kind=None, limit=100, before_seq=None)) == 1


def test_a_shared_identity_is_free_again_once_its_job_ends(store: JobStore) -> None:
    first, created = store.find_or_create(unsaved("again", shared=True))
    assert created
    with pytest.raises(IntegrityError):
        store.create(unsaved("again", shared=True))  # the index itself refuses a second active one
    rerun = store.create(unsaved("again", shared=False))  # a deliberate rerun may run beside it
    store.start(first.id, 3)
    store.finish(first.id, JobStatus.failed, error="boom")
    answer, created = store.find_or_create(unsaved("again", shared=True))
    assert (answer.id, created) == (rerun.id, False)
    store.cancel(rerun.id)
    second, created = store.find_or_create(unsaved("again", shared=True))
    assert created and second.id not in (first.id, rerun.id)


def test_finished_jobs_are_counted_among_the_ids_given(store: JobStore) -> None:
    done, failed, running, queued, elsewhere = (new_job(store) for _ in range(5))
    for job_id in (done, failed, running, elsewhere):
        store.start(job_id, 3)
    store.finish(done, JobStatus.succeeded, result={})
    store.finish(failed, JobStatus.failed, error="boom")
    store.finish(elsewhere, JobStatus.succeeded, result={})
    assert store.count_finished([done, failed, running, queued, "missing"]) == 2


def test_pages_are_newest_first_and_filtered(store: JobStore) -> None:
    ids = [new_job(store, kind="kernel" if i % 2 else "train") for i in range(7)]
    first = store.page(status=None, kind=None, limit=3, before_seq=None)
    assert [row.id for row in first] == ids[::-1][:3]
    second = store.page(status=None, kind=None, limit=3, before_seq=first[-1].seq)
    assert [row.id for row in second] == ids[::-1][3:6]
    kernels = store.page(status=None, kind="kernel", limit=10, before_seq=None)
    assert [row.id for row in kernels] == [i for n, i in enumerate(ids) if n % 2][::-1]
    store.cancel(ids[0])
    assert [row.id for row in store.page(status="cancelled", kind=None, limit=10, before_seq=None)] == [
        ids[0]
    ]


def race(first, second):  # type: ignore[no-untyped-def]
    """Run two calls at the same instant from two threads; their results in order."""
    barrier = threading.Barrier(2)

    def at_once(call):  # type: ignore[no-untyped-def]
        barrier.wait()
        return call()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(at_once, first), pool.submit(at_once, second)]
        return [future.result() for future in futures]


def test_start_and_cancel_racing_never_run_a_cancelled_job(store: JobStore) -> None:
    for _ in range(25):
        job_id = new_job(store)
        started, cancelled = race(lambda: store.start(job_id, 3), lambda: store.cancel(job_id))  # noqa: B023
        row = store.get(job_id)
        if cancelled.status == "cancelled":
            assert started is None and (row.status, row.attempts) == ("cancelled", 0)
        else:
            assert started.attempts == 1 and cancelled.cancel_requested
            assert (row.status, row.cancel_requested) == ("running", True)


def test_racing_finishes_write_exactly_one_outcome(store: JobStore) -> None:
    for _ in range(25):
        job_id = new_job(store)
        store.start(job_id, 3)
        outcomes = race(
            lambda: store.finish(job_id, JobStatus.succeeded, result={"ok": 1}) is not None,  # noqa: B023
            lambda: store.finish(job_id, JobStatus.failed, error="duplicate") is not None,  # noqa: B023
        )
        assert sorted(outcomes) == [False, True]
        row = store.get(job_id)
        assert (row.status, row.result, row.error) in (
            ("succeeded", {"ok": 1}, None),
            ("failed", None, "duplicate"),
        )


def finish(store: JobStore, row: JobRow, result: dict) -> None:
    store.start(row.id, 3)
    store.finish(row.id, JobStatus.succeeded, result=result)


def test_reuse_crosses_users_only_for_lab_results_and_gives_a_copy_of_ones_own(store: JobStore) -> None:
    """A private result answers its owner only; a lab-visible success answers everyone, as a
    succeeded row of their own carrying the result and naming its source; active jobs of others
    are never joined, so two users' identical runs may be active at once."""
    private = store.create(unsaved("x", shared=True, owner="alice"))
    finish(store, private, {"v": 1})
    assert store.find_reusable("x", "bob") is None
    assert store.find_reusable("x", "alice").id == private.id
    running = store.create(unsaved("y", shared=True, owner="alice", visibility="lab"))
    store.start(running.id, 3)
    mine, created = store.find_or_create(unsaved("y", shared=True, owner="bob"))
    assert created and mine.id != running.id  # the index is per owner: no clash
    shared = store.create(unsaved("z", shared=True, owner="alice", visibility="lab"))
    finish(store, shared, {"v": 2})
    copy, created = store.find_or_create(unsaved("z", shared=True, owner="bob"))
    assert not created and copy.owner == "bob" and copy.source_id == shared.id
    assert (copy.status, copy.result) == ("succeeded", {"v": 2})
    assert store.find_reusable("z", "bob").id == copy.id  # bob's own success answers him now


def test_tokens_are_hashed_checked_in_constant_time_and_revocable(store: JobStore) -> None:
    access = AccessStore(store.engine)
    with store.engine.begin() as connection:
        for table in ("tokens", "users", "audit"):
            connection.execute(text(f"DELETE FROM {table}"))
    first = access.bootstrap_admin()
    assert first is not None and access.bootstrap_admin() is None  # once per store
    assert access.authenticate(first) == User("admin", "admin")
    row, token = access.create_token("alice", None, "laptop")
    assert access.authenticate(token) == User("alice", "member")
    assert token.split("_", 2)[2] not in {r.digest for r, _ in access.tokens()}  # only hashes stored
    with store.engine.connect() as connection:
        stored = " ".join(str(value) for value in connection.execute(text("SELECT * FROM tokens")).all())
    assert token.split("_", 2)[2] not in stored and first.split("_", 2)[2] not in stored
    for forged in ("", "ntk_", f"ntk_{row.id}_wrong", f"xyz_{row.id}_{token.split('_')[2]}", token + "x"):
        assert access.authenticate(forged) is None
    assert access.revoke(row.id).revoked_at is not None
    assert access.authenticate(token) is None and access.revoke(row.id).revoked_at is not None
    assert access.revoke("missing") is None


def test_two_api_processes_starting_together_make_one_first_admin(store: JobStore) -> None:
    with store.engine.begin() as connection:
        for table in ("tokens", "users", "audit"):
            connection.execute(text(f"DELETE FROM {table}"))
    access = AccessStore(store.engine)
    made = [token for token in race(access.bootstrap_admin, access.bootstrap_admin) if token]
    assert len(made) == 1 and [row.user for row, _ in access.tokens()] == ["admin"]


def test_fair_order_serves_the_least_busy_and_least_recently_served_first() -> None:
    """Round robin by owner: fewest in flight first, then whoever was served longest ago (never
    served: first), each owner's jobs oldest first."""
    rows = [unsaved(owner=owner) for owner in ["a", "a", "a", "b", "c", "c"]]
    for seq, row in enumerate(rows):
        row.seq = seq
    now = datetime.now(UTC)
    last = {"a": now - timedelta(seconds=5), "b": None, "c": now - timedelta(seconds=60)}
    picked = fair_order(rows, {"a": 0, "c": 0}, last, 5)
    assert [row.owner for row in picked] == ["b", "c", "a", "c", "a"]
    assert picked[2] is rows[0] and picked[4] is rows[1]  # a's oldest first
    busy = fair_order(rows, {"a": 0, "b": 2, "c": 1}, last, 3)
    assert [row.owner for row in busy] == ["a", "c", "a"]  # b has two in flight already


def test_a_job_is_dispatched_once_and_only_while_it_waits(store: JobStore) -> None:
    waiting, cancelled = new_job(store), new_job(store)
    store.cancel(cancelled)
    assert store.queue_state("cpu") == ([Waiting(waiting, "anonymous")], Counter())
    assert (
        race(lambda: store.mark_dispatched(waiting), lambda: store.mark_dispatched(waiting)).count(True) == 1
    )
    assert store.mark_dispatched(cancelled) is False
    assert store.queue_state("cpu") == ([], Counter({"anonymous": 1}))
    store.start(waiting, 3)
    assert store.queue_state("cpu") == ([], Counter({"anonymous": 1}))  # running: still in flight
    store.finish(waiting, JobStatus.succeeded, result={})
    assert store.queue_state("cpu") == ([], Counter())


def test_last_served_is_each_owners_newest_dispatch(store: JobStore) -> None:
    jobs = {owner: [store.create(unsaved(owner=owner)).id for _ in range(3)] for owner in ("a", "b")}
    for job in jobs["a"][:2]:
        store.mark_dispatched(job)
    rows = {job: store.get(job) for job in jobs["a"]}
    newest = max(row.dispatched_at for row in rows.values() if row is not None and row.dispatched_at)
    assert store.last_served({"a", "b", "nobody"}) == {"a": newest, "b": None, "nobody": None}


def test_usage_counts_active_jobs_and_sums_recent_flops(store: JobStore) -> None:
    """Active: queued and running jobs, a sweep's parent aside; flops: the owner's jobs made
    since the cut, whatever their status; other owners' jobs count for nobody else."""

    def job(owner: str, kind: str = "kernel", flops: float = 1.0) -> str:
        row = unsaved(owner=owner, kind=kind)
        row.flops = flops
        return store.create(row).id

    running, done, _queued = job("a", flops=2.0), job("a", flops=3.0), job("a", flops=5.0)
    job("a", kind="sweep", flops=0.0)
    job("b", flops=100.0)
    store.start(running, 3)
    store.start(done, 3)
    store.finish(done, JobStatus.succeeded, result={})
    cut = datetime.now(UTC) - timedelta(hours=1)
    assert store.usage("a", cut) == Usage(active=2, flops=10.0)
    assert store.usage("a", datetime.now(UTC) + timedelta(hours=1)) == Usage(active=2, flops=0.0)
    assert store.usage("nobody", cut) == Usage(active=0, flops=0.0)
    assert [flops for _, flops in store.recent_runs("a", cut)] == [2.0, 3.0, 5.0]


def test_per_user_reads_go_through_the_users_indexes(store: JobStore) -> None:
    """A submit's usage and a pass's last dispatch must read what the user has active, not
    their whole history: SQLite's plan names the (owner, status) and (owner, dispatched_at)
    indexes (PostgreSQL's planner chooses by statistics, so only SQLite's plan is pinned)."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("plans are pinned on SQLite")
    active = (
        "SELECT count(*) FROM jobs WHERE owner = 'a' AND status IN ('queued', 'running') AND kind != 'sweep'"
    )
    newest = "SELECT max(dispatched_at) FROM jobs WHERE owner = 'a'"
    with store.engine.connect() as connection:
        plans = {
            query: " ".join(str(row[-1]) for row in connection.execute(text("EXPLAIN QUERY PLAN " + query)))
            for query in (active, newest)
        }
    assert "ix_jobs_owner_status" in plans[active], plans
    assert "ix_jobs_owner_dispatched" in plans[newest], plans


def test_a_job_the_broker_refused_waits_again(store: JobStore, redis_server) -> None:  # type: ignore[no-untyped-def]
    """A dispatch pass marks a job dispatched, then publishes it; when the broker refuses the
    message (a real Celery app on a port nobody listens on), the job must wait again for the
    next pass instead of counting as in flight, unsent, until the reconciler's grace ends."""
    client = redis.Redis.from_url(redis_server.url)
    # a live worker for the pass: one free slot on cpu
    publish(client, {"name": "refused-test", "queues": ["cpu"], "concurrency": 1}, lifetime=60)
    try:
        nowhere = Celery("nowhere", broker="redis://127.0.0.1:1/0")
        nowhere.conf.broker_connection_timeout = 0.2
        job = new_job(store)
        with pytest.raises(OperationalError):
            Dispatcher(store, client, nowhere).run_pass()
        row = store.get(job)
        assert row is not None and row.status == JobStatus.queued.value and row.dispatched_at is None
        assert store.queue_state("cpu") == ([Waiting(job, "anonymous")], Counter())
        assert store.undo_dispatch(job) is False  # only a dispatched job goes back
    finally:
        client.delete(PREFIX + "refused-test")  # no ghost worker for the tests after this one
