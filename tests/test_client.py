"""The Python client against a live stack over HTTP: submit, follow, fetch, cancel and list jobs,
the server's errors, and retries when the service is away or unavailable."""

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from schemas import JobStatus, KernelResult
from service.client import ApiError, AsyncClient, Client, Retry, Unreachable, WaitTimeout
from service.client import client as client_module
from service.server.app import create_app
from service.server.settings import ServerSettings

from .conftest import Stack, admin_token, serving
from .test_api import slow, sphere
from .test_events import steady

QUICK = Retry(attempts=3, backoff=0.2)


def test_submit_follow_and_fetch_the_result(stack: Stack, served: str) -> None:
    with Client(served) as client:
        job = client.submit(steady(seed=400))
        assert job.status is JobStatus.queued and not job.view.cached
        seen = []
        final = job.wait(timeout=120, on_progress=seen.append)
        assert final.status is JobStatus.succeeded and job.status is JobStatus.succeeded
        assert (seen[0].kind, seen[-1].kind, seen[-1].status) == ("status", "status", JobStatus.succeeded)
        assert seen[-1].finished and not any(event.finished for event in seen[:-1])
        assert any(event.kind == "progress" and 0 < event.progress < 1 for event in seen)
        result = KernelResult.model_validate(job.result())
        assert (result.n, result.empirical is not None) == (128, True)

        again = client.submit(steady(seed=400))
        assert again.id == job.id and again.view.cached
        assert again.wait(timeout=5).status is JobStatus.succeeded
        assert client.job(job.id).view.finished_at == final.finished_at

        fresh = client.submit(sphere(n=16, seed=400))  # the result's long-poll: one call from submit
        assert KernelResult.model_validate(fresh.result(wait=60)).n == 16


def test_the_servers_errors_carry_its_detail(served: str) -> None:
    with Client(served) as client:
        with pytest.raises(ApiError) as bad:
            client.submit(sphere(n="many"))
        assert bad.value.status_code == 422
        assert bad.value.detail[0]["loc"] == ["body", "spec", "kernel", "dataset", "sphere", "n"]
        assert str(bad.value).startswith("422: spec.kernel.dataset.sphere.n: Input should be a valid integer")
        with pytest.raises(ApiError) as unknown:
            client.job("0123456789abcdef")
        assert unknown.value.status_code == 404 and "no job with id" in str(unknown.value)


def test_cancel_a_running_job(stack: Stack, served: str) -> None:
    with Client(served) as client:
        job = client.submit(steady(seed=401))
        for event in job.events(timeout=60):
            if event.status is JobStatus.running:
                break
        assert job.cancel().cancel_requested
        assert job.wait(timeout=30).status is JobStatus.cancelled
        with pytest.raises(ApiError) as refused:
            job.result()
        assert refused.value.status_code == 409 and refused.value.detail["status"] == "cancelled"
        with pytest.raises(ApiError) as again:
            job.cancel()
        assert again.value.status_code == 409


def test_wait_gives_up_after_its_timeout(stack: Stack, served: str) -> None:
    with Client(served) as client:
        busy = client.submit(slow(seed=402))  # seconds of work: the next job cannot start in 0.5 s
        queued = client.submit(sphere(seed=403))
        started = time.monotonic()
        with pytest.raises(WaitTimeout):
            queued.wait(timeout=0.5)
        assert 0.4 < time.monotonic() - started < 3
        assert queued.wait(timeout=120).status is JobStatus.succeeded
        assert busy.refresh().status is JobStatus.succeeded


def test_jobs_are_listed_newest_first_across_pages(
    stack: Stack, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "PAGE_MAX", 2)
    with Client(served) as client:
        submitted = [client.submit(sphere(seed=404 + i)) for i in range(3)]
        for job in submitted:
            job.wait(timeout=60)
        listed = client.jobs(status="succeeded", kind="kernel", limit=3)
        assert [job.id for job in listed] == [job.id for job in reversed(submitted)]
        assert all(job.status is JobStatus.succeeded for job in listed)
        assert client.jobs(kind="train") == []


def test_the_async_client(stack: Stack, served: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(served) as client:
            jobs = [await client.submit(sphere(seed=410 + i)) for i in range(2)]
            views = await asyncio.gather(*(job.wait(timeout=60) for job in jobs))
            assert [view.status for view in views] == [JobStatus.succeeded] * 2
            results = await asyncio.gather(*(job.result() for job in jobs))
            assert [result["n"] for result in results] == [32, 32]
            listed = await client.jobs(kind="kernel", limit=2)
            assert [job.id for job in listed] == [job.id for job in reversed(jobs)]
            events = [event async for event in jobs[0].events(timeout=10)]
            assert [(event.kind, event.status) for event in events] == [("status", JobStatus.succeeded)]
            with pytest.raises(ApiError) as bad:
                await client.submit(sphere(n=0))
            assert bad.value.status_code == 422

    asyncio.run(scenario())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_errors_are_retried_until_the_service_answers(stack: Stack) -> None:
    port, stop = free_port(), threading.Event()

    def serve_later() -> None:
        time.sleep(1.0)
        with serving(create_app(stack.settings), port):
            stop.wait()

    threading.Thread(target=serve_later, daemon=True).start()
    started = time.monotonic()
    try:
        with Client(
            f"http://127.0.0.1:{port}", retry=Retry(attempts=10, backoff=0.1, max_delay=0.5)
        ) as client:
            job = client.submit(sphere(seed=420))
            assert time.monotonic() - started > 1.0
            assert job.wait(timeout=60).status is JobStatus.succeeded
    finally:
        stop.set()


def test_unavailable_and_unreachable_services(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    no_broker = ServerSettings(
        data_dir=tmp_path, redis_url=f"unix://{tmp_path / 'nothing.sock'}", database_url=database
    )
    with serving(create_app(no_broker)) as url, Client(url, admin_token(no_broker), retry=QUICK) as client:
        started = time.monotonic()
        with pytest.raises(ApiError) as unavailable:
            client.submit({"kind": "kernel", "device": "cuda"})
        assert unavailable.value.status_code == 503 and "broker" in str(unavailable.value)
        assert time.monotonic() - started >= 0.2 + 0.4
    # a 404 is an answer, not a failure to retry: one try, far sooner than the 5 s a retry waits
    with (
        serving(create_app(no_broker)) as url,
        Client(url, admin_token(no_broker), retry=Retry(attempts=2, backoff=5.0)) as client,
    ):
        started = time.monotonic()
        with pytest.raises(ApiError) as unknown:
            client.job("0123456789abcdef")
        assert unknown.value.status_code == 404 and time.monotonic() - started < 5.0

    with Client(f"http://127.0.0.1:{free_port()}", retry=QUICK) as client, pytest.raises(Unreachable):
        client.jobs()
