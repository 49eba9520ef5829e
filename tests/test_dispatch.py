"""The submit's dispatch pass: before the answer when the dispatch lock is free, so the worker
starts while the answer travels; after the answer when another pass holds the lock, so a pass
that read the queue before the new job was stored cannot leave it waiting for the periodic
pass. Real Redis (an embedded redis-server), a real Celery app and both store backends."""

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from fastapi import BackgroundTasks

from service.server.routes.jobs import dispatch
from workers.celery_app import make_celery
from workers.dispatch import LOCK
from workers.heartbeat import PREFIX, publish
from workers.settings import Settings
from workers.store import JobStore
from workers.store.jobs import Waiting

from .test_store import new_job

WORKER = "dispatch-test"


@pytest.fixture
def client(redis_server) -> Iterator[redis.Redis]:  # type: ignore[no-untyped-def]
    """The session's Redis with one live worker of one process on cpu; no message left behind."""
    connection = redis.Redis.from_url(redis_server.url)
    publish(connection, {"name": WORKER, "queues": ["cpu"], "concurrency": 1}, lifetime=60)
    yield connection
    connection.delete(PREFIX + WORKER, "cpu")  # no ghost worker or message for later tests
    connection.close()


def test_a_submit_sends_its_job_before_it_answers(store: JobStore, client: redis.Redis, redis_server) -> None:  # type: ignore[no-untyped-def]
    job = new_job(store)
    later = BackgroundTasks()
    dispatch(store, client, make_celery(Settings(redis_url=redis_server.url)), later)
    assert store.queue_state("cpu") == ([], Counter({"anonymous": 1}))
    assert client.llen("cpu") == 1 and not later.tasks  # the message is on the queue already
    row = store.get(job)
    assert row is not None and row.dispatched_at is not None


def test_a_submit_leaves_its_pass_for_after_the_answer_while_another_holds_the_lock(
    store: JobStore,
    client: redis.Redis,
    redis_server,  # type: ignore[no-untyped-def]
) -> None:
    job = new_job(store)
    later = BackgroundTasks()
    held = client.lock(LOCK, timeout=30)
    assert held.acquire(blocking=False)
    try:
        dispatch(store, client, make_celery(Settings(redis_url=redis_server.url)), later)
        assert store.queue_state("cpu") == ([Waiting(job, "anonymous")], Counter())  # not sent yet
        assert len(later.tasks) == 1
    finally:
        held.release()
    asyncio.run(later())  # what Starlette runs once the answer has left
    assert store.queue_state("cpu") == ([], Counter({"anonymous": 1})) and client.llen("cpu") == 1
