"""Every worker pool keeps the time limit and cancel: a real `ntkdyn worker --pool solo` (the
pool Celery runs no time limits on) and `--pool prefork` (soft and hard limits in the pool)
end a job that runs past its limit failed, with the time-limit message, soon after the limit;
and a running job cancelled ends cancelled."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.server.app import create_app
from service.server.processes import spawn, stop
from service.server.settings import ServerSettings
from workers.failures import TIME_LIMIT

from .conftest import Stack, authorize, embedded_settings, wait_for_workers
from .processes import tail

LIMIT = 2.0
"""Seconds a job may run: far shorter than ENDLESS."""
LATE = 10.0
"""Seconds past the limit a job may still run: on a 2-core machine it ended 0.0-0.1 s past it on
either pool (a progress report every ~0.1 s), so this is room for a loaded one."""
ENDLESS = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 128, "d": 6, "seed": 0},
    "empirical": {"widths": [2**22], "replicates": 8},
}
"""Minutes of compute with a progress report every ~0.1 s from the start, so only the limit or a
cancel ends it in a test. Not n = 512: its dense eigendecomposition, before the first report,
took 10 s on a loaded 2-core machine (two torch threads), and no limit or cancel acts inside it."""


def endless(seed: int) -> dict:
    return {**ENDLESS, "dataset": {**ENDLESS["dataset"], "seed": seed}}


def start_worker_on(settings: ServerSettings, pool: str, log: Path) -> subprocess.Popen:
    """A real `ntkdyn worker --pool POOL` on the settings' Redis and store and with its limits."""
    environment = settings.environment() | {
        "NTKDYN_MAX_JOB_SECONDS": str(settings.max_job_seconds),
        "NTKDYN_VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
        "NTKDYN_PROGRESS_INTERVAL": str(settings.progress_interval),
        "NTKDYN_WORKER_HEARTBEAT_SECONDS": "1",
    }
    argv = [sys.executable, "-m", "service.cli", "worker", "--pool", pool]
    return spawn(argv, env=environment, log_file=log)


@pytest.fixture(scope="module", params=["solo", "prefork"])
def pool_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose one worker runs the pool of the parameter, with jobs limited to LIMIT s."""
    folder = tmp_path_factory.mktemp(f"pool-{request.param}")
    overrides = {"max_job_seconds": LIMIT, "visibility_timeout": 3600, "progress_interval": 0.1}
    with embedded_settings(folder, max_flops=1e15, **overrides) as settings:
        log = folder / "worker.log"
        worker = start_worker_on(settings, request.param, log)
        try:
            wait_for_workers(settings)
            with TestClient(create_app(settings)) as client:
                yield Stack(settings, authorize(client, settings), None, worker, log)  # type: ignore[arg-type]
        finally:
            stop(worker, grace=10)


def seconds_running(job: dict) -> float:
    started, finished = (datetime.fromisoformat(job[name]) for name in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def test_a_job_past_its_limit_fails_soon_after_it(pool_stack: Stack) -> None:
    job = pool_stack.submit(endless(seed=1))
    done = pool_stack.wait(job["id"], timeout=LIMIT + LATE + 30)
    assert done["status"] == "failed", tail(pool_stack.log)
    assert done["error"] == f"{TIME_LIMIT} of {LIMIT:g} s" and done["attempts"] == 1
    # prefork's soft limit counts from the task's start, a few ms before the store's started_at
    assert LIMIT - 0.5 < seconds_running(done) < LIMIT + LATE


def test_a_running_job_cancelled_ends_cancelled(pool_stack: Stack) -> None:
    job = pool_stack.submit(endless(seed=2))
    assert pool_stack.wait_running(job["id"])["status"] == "running"
    assert pool_stack.client.delete(f"/v1/jobs/{job['id']}").status_code == 202
    done = pool_stack.wait(job["id"], timeout=LATE)
    assert done["status"] == "cancelled" and seconds_running(done) < LIMIT, tail(pool_stack.log)
