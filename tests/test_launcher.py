"""`ntkdyn run` from a user's terminal: it starts the stack, serves a job, and Ctrl-C (or the
launcher's death) leaves no process behind."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.server.embedded import EmbeddedRedis
from service.server.settings import ServerSettings
from workers.store import make_engine, migrate
from workers.store.access import AccessStore

from .conftest import POSTGRES_ENV, database_url_for, empty
from .processes import alive, descendants

EXAMPLE = Path(__file__).parent.parent / "examples" / "kernel_sphere.json"
SLOW = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 6, "seed": 1},
    "empirical": {"widths": [2**19]},
}
"""A job of a few seconds, to be running or queued when Redis dies."""


def launch(data_dir: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """Start `ntkdyn run` on a free port; returns the process and the URL it printed (the lines
    before it are kept in `printed`)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    environment.update(NTKDYN_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **env)
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run", "--port", "0"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    lines = []
    for line in process.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "ntkdyn is up at" in line:
            printed[:] = lines
            return process, line.split("ntkdyn is up at", 1)[1].split()[0]
        assert time.monotonic() < deadline, "".join(lines)
    raise AssertionError("".join(lines))


printed: list[str] = []
SECRET = "not-for-the-logs"


def api(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def first_admin(data_dir: Path) -> str:
    """The token `ntkdyn run` wrote on its first start."""
    return (data_dir / "admin.token").read_text().strip()


def wait_ready(client: httpx.Client, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.2)


def submit(client: httpx.Client, spec: dict) -> str:
    """A new job of `spec` (never an identical earlier one); its id."""
    response = client.post("/v1/jobs", json={"spec": spec, "reuse": False})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_done(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{job_id}", params={"wait": 10}).json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, job
    return job


def run_example(url: str, token: str) -> dict:
    with api(url, token) as client:
        wait_ready(client)
        return wait_done(client, submit(client, json.loads(EXAMPLE.read_text())["spec"]))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def wait_gone(pids: dict[int, str], timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return [command for pid, command in pids.items() if alive(pid)]


def test_run_serves_a_job_and_ctrl_c_stops_everything(data_dir: Path) -> None:
    process, url = launch(data_dir)
    try:
        token = first_admin(data_dir)
        assert run_example(url, token)["status"] == "succeeded"
        children = descendants(process.pid)
        commands = " ".join(children.values())
        assert "redis-server" in commands and "service.cli worker" in commands
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert wait_gone(children) == []
    finally:
        process.kill()
    assert (data_dir / "redis.aof").exists() and (data_dir / "ntkdyn.db").exists()
    assert not (data_dir / "redis.sock").exists()
    # safe at rest: the folder is its owner's alone, every file in it too; the token is never logged
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {"admin.token", "ntkdyn.db", "worker.log", "redis.log"} <= {path.name for path in files}
    loose = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files}
    assert {name: mode for name, mode in loose.items() if mode != oct(0o600)} == {}
    assert any(str(data_dir / "admin.token") in line for line in printed)
    logs = "".join(printed) + "".join(
        path.read_text(errors="replace") for path in files if path.suffix == ".log"
    )
    assert token not in logs and token.split("_", 2)[2] not in logs


def test_children_die_with_a_killed_launcher(data_dir: Path) -> None:
    process, _url = launch(data_dir)
    children = descendants(process.pid)
    assert len(children) >= 2
    process.kill()
    process.wait()
    assert wait_gone(children) == []


def test_external_redis_and_store_start_nothing_embedded(
    data_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # a Redis of its own: the session's shared one may hold what earlier tests' API processes
    # left (a dispatch lock, heartbeats), which is not what this test is about
    redis_server = EmbeddedRedis(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis_server.start()
    request.addfinalizer(redis_server.stop)
    # the session's own PostgreSQL database when there is one: the server's database itself may
    # hold another branch's migrations
    backend = "postgresql" if os.environ.get(POSTGRES_ENV) else "sqlite"
    database = database_url_for(backend, tmp_path, request)
    if backend == "postgresql":  # a password in the URL (trust auth ignores it) must not be logged
        scheme, rest = database.split("://", 1)
        user, host = rest.split("@", 1)
        database = f"{scheme}://{user.split(':')[0]}:{SECRET}@{host}"
    # a shared database may hold earlier tests' jobs, and one of them queued or running on cpu
    # (dispatched by a stack that is gone) fills this stack's only slot: the job waited forever
    engine = make_engine(ServerSettings(database_url=database).effective_database_url)
    migrate(engine)
    empty(engine)
    engine.dispose()
    process, url = launch(data_dir, REDIS_URL=redis_server.url, DATABASE_URL=database)
    try:  # an external store has its admin already: a token made for this test, as an admin would
        engine = make_engine(ServerSettings(database_url=database).effective_database_url)
        _, token = AccessStore(engine).create_token("launcher-test", "member", "test_launcher")
        engine.dispose()
        assert run_example(url, token)["status"] == "succeeded"
        commands = " ".join(descendants(process.pid).values())
        assert "redis-server" not in commands and "service.cli worker" in commands
        assert not (data_dir / "ntkdyn.db").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert alive(redis_server.process.pid), "the external Redis must outlive the stack"
    output = "".join(printed) + (process.stdout.read() if process.stdout else "")  # type: ignore[union-attr]
    logs = output + "".join(path.read_text(errors="replace") for path in data_dir.glob("*.log"))
    assert SECRET not in logs and token not in logs


def redis_server_pid(launcher: subprocess.Popen) -> int | None:
    """The pid of the launcher's redis-server, if one runs."""
    pids = [pid for pid, command in descendants(launcher.pid).items() if "redis-server" in command]
    return pids[0] if pids else None


def test_a_killed_redis_server_is_started_again_and_no_work_is_lost(data_dir: Path) -> None:
    process, url = launch(data_dir, NTKDYN_RECONCILE_SECONDS="2")
    try:
        with api(url, first_admin(data_dir)) as client:
            wait_ready(client)
            running = submit(client, SLOW)
            while client.get(f"/v1/jobs/{running}").json()["status"] == "queued":
                time.sleep(0.05)
            queued = submit(client, {**SLOW, "dataset": {**SLOW["dataset"], "seed": 2}})  # behind it
            aof = data_dir / "redis.aof"
            while queued.encode() not in aof.read_bytes():  # written through to the append-only file
                time.sleep(0.05)
            killed = redis_server_pid(process)
            assert killed is not None
            os.kill(killed, signal.SIGKILL)
            # while the broker is down a submit is a 503 (quotas live in Redis), which clients
            # retry; once it is back the same submit is taken
            during_spec = {**SLOW, "dataset": {**SLOW["dataset"], "seed": 3}}
            refused = client.post("/v1/jobs", json={"spec": during_spec, "reuse": False})
            assert refused.status_code in (202, 503), refused.text
            deadline = time.monotonic() + 30
            while redis_server_pid(process) in (None, killed):
                assert time.monotonic() < deadline, "redis-server was not started again"
                time.sleep(0.05)
            wait_ready(client, timeout=30)
            during = refused.json()["id"] if refused.status_code == 202 else submit(client, during_spec)
            for job_id in (running, queued, during):
                assert wait_done(client, job_id, timeout=120)["status"] == "succeeded"
        children = descendants(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert wait_gone(children) == []
    finally:
        process.kill()
