"""The deployment on several machines, without Docker: the API and two workers, each a process
with a data folder of its own, sharing nothing but a Redis and a PostgreSQL server over TCP. A
sweep's children run on both workers; a worker killed in the middle of a child loses nothing: the
child runs again on the other worker, and the sweep succeeds.

The servers are this machine's (redis://127.0.0.1:6379 and postgresql://postgres@127.0.0.1:5432,
trust auth). Without them the test is skipped, except where NTKDYN_TEST_DATABASE_URL is set (CI):
it then names the PostgreSQL server to use, and a missing server fails the test.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

import httpx
import psycopg
import pytest
import redis
from psycopg import sql

from service.server.processes import spawn, stop
from service.server.settings import ServerSettings
from workers.claims import claims

from .conftest import POSTGRES_ENV, admin_token, start_worker
from .processes import tail, wait_for_line

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REDIS_SERVER = "redis://127.0.0.1:6379"
REDIS_DB = 13
"""The database of the machine's Redis that this test works in, flushed before and after (no
other test uses that Redis; the README's example uses database 0)."""
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
"""Where the test creates its database, unless NTKDYN_TEST_DATABASE_URL names another server."""
HEARTBEAT = 1.0
"""Seconds between heartbeats: a dead worker's job goes back to its queue about 3 s (a heartbeat's
lifetime) and one watch period after the worker died."""
CHILD = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 6, "seed": 0},
    "empirical": {"widths": [2**17]},
}
"""~1 s of compute on an idle machine, several on a busy one, with progress every 0.1 s: long
enough to be caught in the middle and killed there."""
SWEEP = {
    "kind": "sweep",
    "base": CHILD,
    "axes": [{"path": "dataset.seed", "values": [1, 2, 3, 4]}],
    "metrics": [{"name": "lambda_min", "path": "spectrum.lambda_min"}],
}
"""Four children: one on each worker; the first worker to finish one is killed in the middle of
its next, which runs again on the other worker, as do the rest."""
FINISHED = ("succeeded", "failed", "cancelled")
POLL = 0.05
"""Seconds between looks at the jobs and the claims."""
ACCESS_LOG = r'^INFO: +[0-9.]+:[0-9]+ - "'
"""uvicorn's line for each request: the test's polling, not evidence."""
T = TypeVar("T")


def unavailable(reason: str) -> NoReturn:
    """Skip for want of a shared server; fail instead where CI promises the servers."""
    if os.environ.get(POSTGRES_ENV):
        pytest.fail(f"{reason} ({POSTGRES_ENV} is set: CI provides the servers)")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test's database on the machine's Redis, empty before and after."""
    url = f"{REDIS_SERVER}/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.flushdb()
    except redis.ConnectionError as error:
        unavailable(f"no Redis at {REDIS_SERVER}: {error}")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def execute(server: str, statement: sql.Composed) -> None:
    """Run one statement outside a transaction (CREATE / DROP DATABASE) on a PostgreSQL server."""
    with psycopg.connect(server, autocommit=True, connect_timeout=3) as connection:
        connection.execute(statement)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards; its URL."""
    server = os.environ.get(POSTGRES_ENV) or POSTGRES_SERVER
    server = "postgresql://" + server.split("://", 1)[1]  # libpq's spelling, whatever the driver
    name = f"ntkdyn_two_machines_{uuid.uuid4().hex[:12]}"
    try:
        execute(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as error:
        unavailable(f"no PostgreSQL at {server}: {error}")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        execute(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def evidence(logs: Path) -> Iterator[None]:
    """A failure in the block (an assertion, an error, the timeout) shows the end of every log."""
    try:
        yield
    except BaseException:
        tails = [tail(log, skip=ACCESS_LOG) for log in sorted(logs.glob("*.log"))]
        sys.stderr.write("\n\n".join(tails) + "\n")
        raise


@dataclass
class Machine:
    """A process of the deployment, as alone on a machine: its data folder, and for a worker the
    name it beats and claims jobs under."""

    process: subprocess.Popen
    folder: Path
    name: str = ""


@dataclass
class Deployment:
    """The API's client, the shared Redis, the two worker machines, the folder of every process's
    log, and who was seen holding each job: the workers' names in the order they claimed it (a
    claim stands for one delivery)."""

    api: httpx.Client
    broker: redis.Redis
    workers: list[Machine]
    logs: Path
    holders: dict[str, list[str]] = field(default_factory=dict)

    def submit(self, spec: dict) -> dict:
        response = self.api.post("/v1/jobs", json={"spec": spec})
        assert response.status_code == 202, response.text
        return response.json()

    def look(self) -> dict[str, dict]:
        """Every job as the API lists it, by id. The claims are read first, so a job listed as
        finished was seen in the hands of the worker that finished it (it held it for seconds)."""
        for job_id, claim in claims(self.broker).items():
            seen = self.holders.setdefault(job_id, [])
            if seen[-1:] != [claim.worker]:
                seen.append(claim.worker)
        page = self.api.get("/v1/jobs", params={"limit": 50})
        assert page.status_code == 200, page.text
        return {job["id"]: job for job in page.json()["items"]}

    def until(self, found: Callable[[dict[str, dict]], T | None], timeout: float, what: str) -> T:
        """What `found` makes of the jobs, as soon as it makes something of them."""
        deadline = time.monotonic() + timeout
        while (answer := found(self.look())) is None:
            assert time.monotonic() < deadline, f"{what} in {timeout:g} s; holders: {self.holders}"
            time.sleep(POLL)
        return answer

    def finisher(self, job: dict) -> str | None:
        """The worker that ran a succeeded job to its end: the last one to claim it."""
        seen = self.holders.get(job["id"])
        return seen[-1] if job["status"] == "succeeded" and seen else None

    def worker(self, name: str) -> Machine:
        (machine,) = [machine for machine in self.workers if machine.name == name]
        return machine


def start_api(settings: ServerSettings, log: Path) -> subprocess.Popen:
    """`ntkdyn api` on a free port, on the settings' servers, watching heartbeats at their pace."""
    environment = settings.environment()
    environment["NTKDYN_WORKER_HEARTBEAT_SECONDS"] = str(settings.worker_heartbeat_seconds)
    return spawn([sys.executable, "-m", "service.cli", "api", "--port", "0"], env=environment, log_file=log)


def wait_for_two_workers(api: httpx.Client, workers: list[Machine], timeout: float = 90) -> None:
    """Wait until /readyz lists both workers; name each machine after its heartbeat (a worker's
    name is `ntkdyn-<pid>-<random>@<host>`, `ntkdyn worker`'s process id first)."""
    deadline = time.monotonic() + timeout
    while len(names := [worker["name"] for worker in api.get("/readyz").json().get("workers") or []]) < 2:
        assert all(machine.process.poll() is None for machine in workers), "a worker exited"
        assert time.monotonic() < deadline, f"workers seen: {names}"
        time.sleep(0.2)
    for machine in workers:
        (machine.name,) = [name for name in names if name.startswith(f"ntkdyn-{machine.process.pid}-")]


@pytest.fixture
def deployment(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Deployment]:
    """The API and two workers, each with its own data folder, on the shared Redis and PostgreSQL;
    jobs go back to their queue only when their worker's heartbeat expires (the broker would wait
    an hour). Every process is stopped afterwards, whatever happened; logs are in tmp_path/logs."""
    shared = ServerSettings(
        redis_url=redis_url,
        database_url=database_url,
        max_job_seconds=60,
        visibility_timeout=3600,
        progress_interval=0.1,
        worker_heartbeat_seconds=HEARTBEAT,
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as running, evidence(logs):
        machines = []
        for name, start in [("api", start_api), ("first", start_worker), ("second", start_worker)]:
            folder = tmp_path / name
            folder.mkdir()
            process = start(shared.model_copy(update={"data_dir": folder}), logs / f"{name}.log")
            running.callback(stop, process, grace=10)
            machines.append(Machine(process, folder))
        api, *workers = machines
        url = wait_for_line(logs / "api.log", r"Uvicorn running on (http://\S+)", api.process)[1]
        token = admin_token(shared.model_copy(update={"data_dir": api.folder}))
        client = running.enter_context(
            httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        )
        broker = redis.Redis.from_url(redis_url)
        running.callback(broker.close)
        wait_for_two_workers(client, workers)
        yield Deployment(client, broker, workers, logs)


def test_a_sweep_runs_on_two_machines_and_survives_losing_one(deployment: Deployment) -> None:
    with evidence(deployment.logs):
        parent = deployment.submit(SWEEP)
        children = parent["children"]

        def in_the_middle(jobs: dict[str, dict]) -> tuple[str, str] | None:
            """A child in the first half of its first run, and the worker running it, which has
            finished another child already."""
            done_by = {deployment.finisher(jobs[child]) for child in children} - {None}
            for child in children:
                job, seen = jobs[child], deployment.holders.get(child)
                early = (job["status"], job["attempts"]) == ("running", 1) and 0 < job["progress"] < 0.5
                holder = seen[-1] if seen else None
                if early and holder in done_by:
                    return child, holder
            return None

        job_id, name = deployment.until(in_the_middle, 60, "no worker was seen in the middle of a child")
        victim = deployment.worker(name)
        (survivor,) = [machine for machine in deployment.workers if machine is not victim]
        os.killpg(victim.process.pid, signal.SIGKILL)  # the worker and its pool child: no clean-up
        victim.process.wait()
        killed = deployment.api.get(f"/v1/jobs/{job_id}").json()
        assert (killed["status"], killed["attempts"]) == ("running", 1), "it ended before the kill"

        def ended(jobs: dict[str, dict]) -> dict | None:
            return jobs[parent["id"]] if jobs[parent["id"]]["status"] in FINISHED else None

        done = deployment.until(ended, 90, "the sweep did not end")
        jobs = deployment.look()
        assert done["status"] == "succeeded", done
        assert [jobs[child]["status"] for child in children] == ["succeeded"] * len(children)
        # both machines ran children to their end: the killed one before it died, the other the rest
        assert {deployment.finisher(jobs[child]) for child in children} == {victim.name, survivor.name}
        # the killed child ran again, to its end, on the surviving machine
        assert deployment.holders[job_id] == [victim.name, survivor.name]
        assert jobs[job_id]["attempts"] == 2
        rows = deployment.api.get(f"/v1/jobs/{parent['id']}/result").json()["rows"]
        assert len(rows) == len(children)
        # each worker kept nothing of its own: the shared servers hold every job and every message
        assert [list(machine.folder.iterdir()) for machine in deployment.workers] == [[], []]
