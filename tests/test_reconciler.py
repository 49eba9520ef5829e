"""A job the broker forgot (Redis lost its data, or was down at submit) is sent again from the
store, exactly once."""

import os
import signal

import redis
from fastapi.testclient import TestClient

from service.server.app import create_app
from service.server.embedded import EmbeddedRedis
from service.server.processes import stop
from service.server.settings import ServerSettings
from workers import heartbeat
from workers.events import EventLog
from workers.reconciler import Reconciler, broker_task_ids

from .conftest import Stack, authorize, start_worker, wait_for_workers

SPEC = {"kind": "kernel", "dataset": {"name": "sphere", "n": 16, "d": 3, "seed": 11}}


def pretend_a_worker(client: redis.Redis) -> None:
    """A heartbeat of a worker of one process on the cpu queue that takes no message."""
    heartbeat.publish(client, {"name": "pretend", "queues": ["cpu"], "concurrency": 1}, lifetime=600)


def test_lost_queued_job_is_sent_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = EmbeddedRedis(tmp_path)
    server.start()
    settings = ServerSettings(
        data_dir=tmp_path, redis_url=server.url, database_url=f"sqlite:///{tmp_path / 's.db'}"
    )
    client = redis.Redis.from_url(server.url)
    try:
        with TestClient(create_app(settings)) as api:
            authorize(api, settings)
            state = api.app.state
            stack = Stack(settings, api, state.store, None, tmp_path / "worker.log")  # type: ignore[arg-type]
            pretend_a_worker(client)  # capacity for the dispatcher, and nobody takes the message
            job = stack.submit(SPEC)
            assert broker_task_ids(client) == {job["id"]}
            eager = Reconciler(state.store, client, state.celery, 0, EventLog(client, 60))
            assert eager.run_pass() == [] and eager.run_pass() == []

            client.flushall()  # the broker forgets everything
            assert broker_task_ids(client) == set()
            patient = Reconciler(state.store, client, state.celery, 3600, EventLog(client, 60))
            assert patient.run_pass() == [] and patient.run_pass() == []
            assert eager.run_pass() == [], "a job missing once may be in a worker's hands"
            assert eager.run_pass() == [job["id"]]
            assert broker_task_ids(client) == {job["id"]}
            assert eager.run_pass() == [] and eager.run_pass() == []

            worker = start_worker(settings, tmp_path / "worker.log")
            try:
                wait_for_workers(settings)
                done = stack.wait(job["id"])
                assert (done["status"], done["attempts"]) == ("succeeded", 1)
                assert eager.run_pass() == [] and eager.run_pass() == []
            finally:
                stop(worker, grace=10)
    finally:
        client.close()
        server.stop()


def test_a_submit_while_the_broker_is_down_is_a_503_and_nothing_is_stranded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Quotas and the submit rate are kept in Redis, so a submit without it is refused with a
    503 (which clients retry) instead of stored unseen; once Redis is back the same submit runs."""
    server = EmbeddedRedis(tmp_path)  # not started yet: its socket does not exist
    settings = ServerSettings(
        data_dir=tmp_path, redis_url=server.url, database_url=f"sqlite:///{tmp_path / 's.db'}"
    )
    with TestClient(create_app(settings)) as api:
        authorize(api, settings)
        response = api.post("/v1/jobs", json={"spec": SPEC})
        assert response.status_code == 503 and "broker" in response.json()["detail"]
        assert api.get("/v1/jobs").json()["items"] == []
        server.start()
        try:
            pretend_a_worker(api.app.state.redis)
            response = api.post("/v1/jobs", json={"spec": SPEC})
            assert response.status_code == 202 and response.json()["status"] == "queued"
            assert broker_task_ids(api.app.state.redis) == {response.json()["id"]}
        finally:
            server.stop()


def test_after_redis_dies_and_returns_the_api_and_the_worker_carry_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Redis dies under a running API and worker and comes back from its append-only file: a
    submit meanwhile is a 503; afterwards the API's clients and the worker have reconnected on
    their own and the same submit runs."""
    server = EmbeddedRedis(tmp_path)
    server.start()
    settings = ServerSettings(
        data_dir=tmp_path,
        redis_url=server.url,
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        reconcile_seconds=1,
    )
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings)) as api:
            authorize(api, settings)
            wait_for_workers(settings)
            stack = Stack(settings, api, api.app.state.store, worker, tmp_path / "worker.log")
            assert stack.wait(stack.submit(SPEC)["id"])["status"] == "succeeded"  # every client connected

            os.kill(server.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            server.process.wait()  # type: ignore[union-attr]
            body = {"spec": {**SPEC, "dataset": {**SPEC["dataset"], "seed": 12}}}
            assert api.post("/v1/jobs", json=body).status_code == 503
            server.start()
            response = api.post("/v1/jobs", json=body)
            assert response.status_code == 202 and response.json()["status"] == "queued"
            done = stack.wait(response.json()["id"])
            assert (done["status"], done["attempts"]) == ("succeeded", 1), done
    finally:
        stop(worker, grace=10)
        server.stop()
