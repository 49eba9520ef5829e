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

from service.server.settings import ServerSettings
from workers.store import make_engine
from workers.store.access import AccessStore

from .processes import alive, descendants

EXAMPLE = Path(__file__).parent.parent / "examples" / "kernel_sphere.json"


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


def run_example(url: str, token: str) -> dict:
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        body = json.loads(EXAMPLE.read_text())
        body["reuse"] = False
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        while (job := client.get(f"/v1/jobs/{job_id}", params={"wait": 10}).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
        return job


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
        token = (data_dir / "admin.token").read_text().strip()
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
    assert {
        path.name: oct(stat.S_IMODE(path.stat().st_mode))
        for path in files
        if stat.S_IMODE(path.stat().st_mode) != 0o600
    } == {}
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
    data_dir: Path, redis_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    database = os.environ.get("NTKDYN_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'external.db'}"
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
