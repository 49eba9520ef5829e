"""Real parts for the tests: an embedded redis-server, the store on SQLite and PostgreSQL, real
Celery worker subprocesses, and the FastAPI app in process.

PostgreSQL tests run when NTKDYN_TEST_DATABASE_URL names a server (.ci/run sets it); each test
session works in a database of its own, dropped at the end.
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from service.server.app import create_app
from service.server.embedded import EmbeddedRedis
from service.server.processes import spawn, stop
from service.server.settings import ServerSettings
from workers.heartbeat import live_workers
from workers.store import JobStore, make_engine, migrate

POSTGRES_ENV = "NTKDYN_TEST_DATABASE_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(POSTGRES_ENV):
        return
    skip = pytest.mark.skip(reason=f"set {POSTGRES_ENV} to run the PostgreSQL store tests")
    for item in items:
        if "postgresql" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the server of NTKDYN_TEST_DATABASE_URL, dropped afterwards."""
    server = ServerSettings(database_url=os.environ[POSTGRES_ENV]).database_url
    assert server is not None
    name = f"ntkdyn_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def database_url_for(backend: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    """A migrated, empty store on each backend."""
    engine = make_engine(database_url_for(request.param, tmp_path, request))
    migrate(engine)
    empty(engine)
    yield JobStore(engine)
    engine.dispose()


def start_worker(settings: ServerSettings, log: Path, queues: str = "cpu", **env: str) -> subprocess.Popen:
    """A real `ntkdyn worker --queues QUEUES` subprocess on the settings' Redis and store."""
    environment = settings.environment()
    environment.update(
        NTKDYN_MAX_JOB_SECONDS=str(settings.max_job_seconds),
        NTKDYN_VISIBILITY_TIMEOUT=str(settings.visibility_timeout),
        NTKDYN_UNACKED_RESTORE_INTERVAL=str(settings.unacked_restore_interval),
        NTKDYN_PROGRESS_INTERVAL=str(settings.progress_interval),
        NTKDYN_WORKER_HEARTBEAT_SECONDS="1",
        **env,
    )
    argv = [sys.executable, "-m", "service.cli", "worker", "--queues", queues]
    return spawn(argv, env=environment, log_file=log)


def wait_for_workers(settings: ServerSettings, count: int = 1, timeout: float = 60) -> None:
    client = redis.Redis.from_url(settings.effective_redis_url)
    deadline = time.monotonic() + timeout
    while len(live_workers(client)) < count:
        assert time.monotonic() < deadline, "the worker did not report in time"
        time.sleep(0.1)
    client.close()


@contextmanager
def embedded_settings(folder: Path, **overrides: object) -> Iterator[ServerSettings]:
    """Settings of a stack kept in `folder`: its own started redis-server and a SQLite store."""
    server = EmbeddedRedis(folder)
    server.start()
    try:
        database_url = f"sqlite:///{folder / 'store.db'}"
        yield ServerSettings(data_dir=folder, redis_url=server.url, database_url=database_url, **overrides)  # type: ignore[arg-type]
    finally:
        server.stop()


@dataclass
class Stack:
    """A running stack: Redis, store, one worker, and a client of the in-process API."""

    settings: ServerSettings
    client: TestClient
    store: JobStore
    worker: subprocess.Popen
    log: Path

    def submit(self, spec: dict, **body: object) -> dict:
        response = self.client.post("/v1/jobs", json={"spec": spec, **body})
        assert response.status_code in (200, 202), response.text
        return response.json()

    def wait(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/v1/jobs/{job_id}", params={"wait": 5}).json()
            if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                return job

    def wait_running(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] != "queued" or time.monotonic() > deadline:
                return job
            time.sleep(0.05)


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack on each store backend, with its own redis-server."""
    folder = tmp_path_factory.mktemp(f"stack-{request.param}")
    server = EmbeddedRedis(folder)
    server.start()
    settings = ServerSettings(
        data_dir=folder,
        redis_url=server.url,
        database_url=database_url_for(request.param, folder, request),
        progress_interval=0.1,
        max_flops=1e12,
    )
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    empty(engine)
    log = folder / "worker.log"
    worker = start_worker(settings, log)
    try:
        wait_for_workers(settings)
        with TestClient(create_app(settings)) as client:
            authorize(client, settings)
            yield Stack(settings, client, JobStore(engine), worker, log)
    finally:
        stop(worker, grace=10)
        engine.dispose()
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded redis-server for tests that need a broker but no worker."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@contextmanager
def serving(app: FastAPI, port: int = 0) -> Iterator[str]:
    """`app` served over HTTP by uvicorn in a thread, on `port` (0: any free one); its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def served(stack: Stack) -> Iterator[str]:
    """The stack's API on a real port, for HTTP clients and event streams (keep-alive comments
    every 0.3 s); its URL. Clients and the CLI find the admin token in NTKDYN_TOKEN meanwhile."""
    settings = stack.settings.model_copy(update={"events_keepalive_seconds": 0.3})
    with serving(create_app(settings)) as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("NTKDYN_TOKEN", admin_token(settings))
        yield url


def admin_token(settings: ServerSettings) -> str:
    """The first admin's token, which the app wrote into the data folder when it started."""
    return settings.token_file.read_text().strip()


def authorize(client: TestClient, settings: ServerSettings) -> TestClient:
    """Send the first admin's token with every request of a started TestClient."""
    client.headers["Authorization"] = f"Bearer {admin_token(settings)}"
    return client


def empty(engine: Engine) -> None:
    """Delete every job, user, token and audit entry (a PostgreSQL database is shared by the
    session's stacks; each starts as on a first start)."""
    with engine.begin() as connection:
        for table in ("jobs", "tokens", "users", "audit"):
            connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True, scope="session")
def no_local_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Clients never pick up a developer's ./.ntkdyn token: the default data folder is empty."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("NTKDYN_TOKEN", raising=False)
        patch.setenv("NTKDYN_DATA_DIR", str(tmp_path_factory.mktemp("no-token")))
        yield
