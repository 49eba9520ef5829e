"""Nothing is lost when a worker dies mid-job: the job is delivered again and succeeds."""

import os
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.server.app import create_app
from service.server.processes import stop
from service.server.settings import ServerSettings

from .conftest import Stack, authorize, embedded_settings, start_worker, wait_for_workers
from .processes import descendants

WIDTH = 2**19
SLOW = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 6, "seed": 7},
    "empirical": {"widths": [WIDTH]},
}
"""A job of ~2-3 s with progress every few ms: long enough to be killed while it runs, short
enough to finish well inside the fragile stack's 20 s limit on a loaded 2-core machine (2^20
neurons took 5-8 s there; with the 10 s limit of before, runs beside a second test suite failed
twice)."""
LIMIT = 20


@pytest.fixture
def fragile(tmp_path) -> Iterator[tuple[ServerSettings, TestClient]]:  # type: ignore[no-untyped-def]
    """A stack whose jobs may run LIMIT seconds (whatever their budget) and whose broker
    redelivers unacknowledged work after twice that, swept every second."""
    with (
        embedded_settings(
            tmp_path,
            max_job_seconds=LIMIT,
            visibility_timeout=2 * LIMIT,
            unacked_restore_interval=1,
            progress_interval=0.1,
            max_flops=1e15,
        ) as settings,
        TestClient(create_app(settings)) as client,
    ):
        yield settings, authorize(client, settings)


def test_job_survives_sigkill_of_the_whole_worker(fragile, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings, client = fragile
    first = start_worker(settings, tmp_path / "first.log")
    wait_for_workers(settings)
    stack = Stack(settings, client, None, first, tmp_path / "first.log")  # type: ignore[arg-type]
    job = stack.submit(SLOW)
    assert stack.wait_running(job["id"])["status"] == "running"
    os.killpg(first.pid, signal.SIGKILL)  # parent and pool child together, no chance to clean up
    first.wait()

    second = start_worker(settings, tmp_path / "second.log")
    try:
        started = time.monotonic()
        done = stack.wait(job["id"], timeout=4 * LIMIT)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert time.monotonic() - started >= LIMIT, "redelivered before the visibility timeout"
        assert client.get(f"/v1/jobs/{job['id']}/result").json()["empirical"]["rows"][0]["width"] == WIDTH
    finally:
        stop(second, grace=10)


@pytest.fixture
def served(fragile, tmp_path) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """The fragile stack with one worker running."""
    settings, client = fragile
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        wait_for_workers(settings)
        yield Stack(settings, client, None, worker, tmp_path / "worker.log")  # type: ignore[arg-type]
    finally:
        stop(worker, grace=10)


def test_job_survives_sigkill_of_a_pool_child(served: Stack) -> None:
    job = served.submit({**SLOW, "dataset": {**SLOW["dataset"], "seed": 8}})
    assert served.wait_running(job["id"])["status"] == "running"
    (child,) = descendants(served.worker.pid)
    os.kill(child, signal.SIGKILL)
    done = served.wait(job["id"], timeout=60)
    assert (done["status"], done["attempts"]) == ("succeeded", 2), done


def test_a_job_over_the_time_limit_fails_and_says_so(served: Stack) -> None:
    # 8 replicates of a 2^22-wide kernel on 512 points: about 70 s of compute on a fast core,
    # over three times the limit, within the raised budget of the fragile stack
    endless = {
        **SLOW,
        "dataset": {**SLOW["dataset"], "n": 512},
        "empirical": {"widths": [2**22], "replicates": 8},
    }
    done = served.wait(served.submit(endless)["id"], timeout=4 * LIMIT)
    assert done["status"] == "failed" and f"longer than the limit of {LIMIT} s" in done["error"]
    assert done["attempts"] == 1
