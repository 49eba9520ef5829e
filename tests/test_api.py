"""The REST API against a real stack (embedded redis-server, real Celery worker, store on SQLite
and PostgreSQL): what a user sees from submit to result."""

import base64
import hashlib
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from schemas import KernelResult, TrainResult
from service.server import waiting
from service.server.app import create_app
from service.server.embedded import EmbeddedRedis
from service.server.settings import ServerSettings

from .conftest import Stack, authorize


def sphere(n: int = 32, seed: int = 0, empirical_width: int | None = None) -> dict:
    dataset = {"name": "sphere", "n": n, "d": 6, "seed": seed, "labels": {"rule": "relu_teacher", "k": 3}}
    spec = {"kind": "kernel", "dataset": dataset}
    return spec if empirical_width is None else {**spec, "empirical": {"widths": [empirical_width]}}


def slow(seed: int) -> dict:
    """Seconds of work with a progress check every few milliseconds (1.7 s on an idle 2-core
    machine: 2^20 neurons took 0.87 s, and a submit now starts its job before answering)."""
    return sphere(n=256, seed=seed, empirical_width=2**21)


def test_submit_runs_to_a_result(stack: Stack) -> None:
    response = stack.client.post("/v1/jobs", json={"spec": slow(seed=100)})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["self"]
    assert job["status"] == "queued" and job["cached"] is False

    running = stack.wait_running(job["id"])
    assert running["status"] == "running" and running["attempts"] == 1
    seen = []
    while (now := stack.client.get(f"/v1/jobs/{job['id']}").json())["status"] == "running":
        seen.append((now["progress"], now["message"]))
        time.sleep(0.05)
    assert any(0 < progress < 1 and "neurons" in message for progress, message in seen)
    assert stack.wait(job["id"])["status"] == "succeeded"

    result = KernelResult.model_validate(stack.client.get(job["links"]["result"]).json())
    assert (result.n, result.d, result.dtype) == (256, 6, "float64")
    assert len(result.spectrum.eigenvalues) == len(result.label_energy) == 256
    assert result.empirical is not None and result.empirical.rows[0].relative_frobenius.mean < 0.01


def test_result_is_409_until_the_job_succeeds(stack: Stack) -> None:
    job = stack.submit(slow(seed=101))
    response = stack.client.get(f"/v1/jobs/{job['id']}/result")
    assert response.status_code == 409 and response.json()["detail"]["status"] in ("queued", "running")
    assert stack.wait(job["id"])["status"] == "succeeded"
    assert stack.client.get(f"/v1/jobs/{job['id']}/result").status_code == 200


def test_identical_spec_is_answered_from_the_finished_job(stack: Stack) -> None:
    first = stack.submit(sphere(seed=1))
    assert stack.wait(first["id"])["status"] == "succeeded"
    again = stack.client.post("/v1/jobs", json={"spec": sphere(seed=1)})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["cached"] is True
    fresh = stack.client.post("/v1/jobs", json={"spec": sphere(seed=1), "reuse": False})
    assert fresh.status_code == 202 and fresh.json()["id"] != first["id"]
    assert stack.wait(fresh.json()["id"])["status"] == "succeeded"


def test_identical_submits_at_once_share_one_job_and_one_run(stack: Stack, served: str) -> None:
    """Fifty clients post the same spec over HTTP at the same instant: one row, one run."""
    body, submits = {"spec": slow(seed=105)}, 50
    barrier = threading.Barrier(submits)

    def post(_: int) -> httpx.Response:
        headers = {"Authorization": stack.client.headers["Authorization"]}
        with httpx.Client(base_url=served, timeout=60, headers=headers) as client:
            barrier.wait()
            return client.post("/v1/jobs", json=body)

    with ThreadPoolExecutor(submits) as pool:
        answers = list(pool.map(post, range(submits)))
    assert {answer.status_code for answer in answers} <= {200, 202}
    ids = {answer.json()["id"] for answer in answers}
    assert len(ids) == 1
    assert sum(not answer.json()["cached"] for answer in answers) == 1
    (job_id,) = ids
    done = stack.wait(job_id)
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
    identity = done["spec_hash"]
    rows = stack.client.get("/v1/jobs", params={"kind": "kernel", "limit": 200}).json()["items"]
    assert [row["id"] for row in rows if row["spec_hash"] == identity] == [job_id]


def test_degenerate_inline_data_is_refused_at_submit(stack: Stack) -> None:
    X = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
    cases = [
        ({"kind": "kernel", "dataset": {"name": "inline", "X": X, "y": [0.0, 0.0, 0.0]}}, "y is all zero"),
        ({"kind": "ode", "dataset": {"name": "inline", "X": X, "y": [0.0, 0.0, 0.0]}}, "e(0) = -y = 0"),
        (
            {"kind": "train", "dataset": {"name": "inline", "X": [[0.0, 0.0]] * 3, "y": [1.0, 0.0, 1.0]}},
            "X is all zero",
        ),
        (
            {
                "kind": "train",
                "dataset": {"name": "inline", "X": [*X, [3.0, 4.0]], "y": [1.0, 0.0, 1.0, 1.0]},
            },
            "rows 2 and 3 point the same way",
        ),
        (
            {"kind": "ode", "dataset": {"name": "inline", "X": [*X, [0.0, 0.0]], "y": [1.0, 0.0, 1.0, 1.0]}},
            "row 3 is zero",
        ),
    ]
    for spec, reason in cases:
        response = stack.client.post("/v1/jobs", json={"spec": spec})
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "spec", spec["kind"]] and reason in error["msg"], error
    # given lr and momentum, a singular kernel is no obstacle: the job runs
    given = {"name": "inline", "X": [*X, [3.0, 4.0]], "y": [1.0, 0.0, 1.0, 1.0]}
    spec = {
        "kind": "train",
        "dataset": given,
        "optimizers": [{"name": "heavy_ball", "lr": 0.1, "momentum": 0.5}],
    }
    assert stack.wait(stack.submit({**spec, "width": 64, "steps": 20})["id"])["status"] == "succeeded"


def test_long_poll_returns_when_the_job_ends(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # the end's event wakes the long-poll: with no look at the store for a minute, it still
    # answers within the job's few seconds
    monkeypatch.setattr(waiting, "STORE_CHECK", 60.0)
    job = stack.submit(slow(seed=120))
    started = time.monotonic()
    polled = stack.client.get(f"/v1/jobs/{job['id']}", params={"wait": 30}).json()
    # answered before the wait's end: only the end's event can tell it then (without it, the
    # store is read at the start and again when the 30 s are over); no tighter bound, since a
    # loaded machine takes 20 s and more for the job itself
    assert polled["status"] == "succeeded" and time.monotonic() - started < 30

    stack.submit(slow(seed=106))  # the only worker is busy with it: the next job waits behind it
    long_job = stack.submit(slow(seed=102))
    started = time.monotonic()
    polled = stack.client.get(f"/v1/jobs/{long_job['id']}", params={"wait": 0.5}).json()
    assert polled["status"] in ("queued", "running") and 0.4 < time.monotonic() - started < 3
    # the result's long-poll: 409 while the wait runs out before the end, the document after it
    early = stack.client.get(f"/v1/jobs/{long_job['id']}/result", params={"wait": 0.2})
    assert early.status_code == 409 and early.json()["detail"]["status"] in ("queued", "running")
    result = stack.client.get(f"/v1/jobs/{long_job['id']}/result", params={"wait": 30})
    assert (
        result.status_code == 200
        and result.json() == stack.client.get(f"/v1/jobs/{long_job['id']}/result").json()
    )
    assert stack.client.get(f"/v1/jobs/{long_job['id']}/result", params={"wait": 61}).status_code == 422


def test_cancel_a_running_job(stack: Stack) -> None:
    job = stack.submit(slow(seed=103))
    assert stack.wait_running(job["id"])["status"] == "running"
    response = stack.client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    started = time.monotonic()
    ended = stack.wait(job["id"])
    assert ended["status"] == "cancelled" and time.monotonic() - started < 2
    assert stack.client.get(f"/v1/jobs/{job['id']}/result").status_code == 409
    assert stack.client.delete(f"/v1/jobs/{job['id']}").status_code == 409


def test_a_cancelled_queued_job_never_runs(stack: Stack) -> None:
    busy = stack.submit(slow(seed=104))
    queued = stack.submit(sphere(seed=3))
    response = stack.client.delete(f"/v1/jobs/{queued['id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    stack.wait(busy["id"])
    after = stack.submit(sphere(seed=4))  # FIFO: once it ran, the cancelled job's message was handled
    assert stack.wait(after["id"])["status"] == "succeeded"
    job = stack.client.get(f"/v1/jobs/{queued['id']}").json()
    assert (job["status"], job["attempts"], job["started_at"]) == ("cancelled", 0, None)


def test_a_failing_job_says_why(stack: Stack) -> None:
    tiny = {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]}  # x.x underflows
    job = stack.wait(stack.submit({"kind": "kernel", "dataset": tiny})["id"])
    assert job["status"] == "failed" and "the kernel is zero" in job["error"]
    detail = stack.client.get(f"/v1/jobs/{job['id']}/result").json()["detail"]
    assert detail["status"] == "failed" and "the kernel is zero" in detail["error"]


def test_jobs_page_through_with_filters(stack: Stack) -> None:
    ids = [stack.submit(sphere(seed=10 + i))["id"] for i in range(3)]
    for job_id in ids:
        stack.wait(job_id)
    first = stack.client.get("/v1/jobs", params={"limit": 2}).json()
    assert [job["id"] for job in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    second = stack.client.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert second["items"][0]["id"] == ids[0]
    done = stack.client.get("/v1/jobs", params={"status": "succeeded", "kind": "kernel", "limit": 200}).json()
    assert set(ids) <= {job["id"] for job in done["items"]}
    assert all(job["status"] == "succeeded" for job in done["items"])
    assert stack.client.get("/v1/jobs", params={"kind": "landscape"}).json() == {
        "items": [],
        "next_cursor": None,
    }
    unfiltered = stack.client.get("/v1/jobs", params={"status": "", "kind": "", "limit": 2})
    assert unfiltered.status_code == 200 and unfiltered.json()["items"] == first["items"]


def test_unknown_job_is_404(stack: Stack) -> None:
    assert stack.client.get("/v1/jobs/0123456789abcdef").status_code == 404
    assert stack.client.delete("/v1/jobs/0123456789abcdef").status_code == 404
    assert stack.client.get("/v1/jobs/0123456789abcdef/result").status_code == 404


def assert_422(response, loc: list) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(error["loc"] == loc for error in errors), errors
    return next(error["msg"] for error in errors if error["loc"] == loc)


def test_bad_input_is_a_422_naming_the_field(stack: Stack) -> None:
    post = stack.client.post
    headers = {"content-type": "application/json"}
    assert_422(post("/v1/jobs", content=b'{"spec": {', headers=headers), ["body", 10])
    assert_422(post("/v1/jobs", content=b'\xff\xfe{"spec"', headers=headers), ["body"])
    assert_422(post("/v1/jobs", content=b"[" * 100_000, headers=headers), ["body"])
    kernel_dataset = ["body", "spec", "kernel", "dataset", "sphere"]
    assert_422(post("/v1/jobs", json={"spec": sphere(n="many")}), [*kernel_dataset, "n"])
    assert_422(post("/v1/jobs", json={"spec": sphere(n="32")}), [*kernel_dataset, "n"])
    assert_422(post("/v1/jobs", json={"spec": sphere(n=32.5)}), [*kernel_dataset, "n"])
    assert_422(post("/v1/jobs", json={"spec": sphere(), "reuse": "yes"}), ["body", "reuse"])
    assert_422(post("/v1/jobs", json={"spec": sphere(n=0)}), [*kernel_dataset, "n"])
    assert_422(post("/v1/jobs", json={"spec": sphere(n=10**7)}), [*kernel_dataset, "n"])
    assert_422(post("/v1/jobs", json={"spec": {"kind": "alchemy"}}), ["body", "spec"])
    assert_422(post("/v1/jobs", json={"spec": sphere(), "priority": 9}), ["body", "priority"])
    nan = b'{"spec": {"kind": "kernel", "dataset": {"name": "inline", "X": [[1, NaN], [0, 1]], "y": [1, 2]}}}'
    assert_422(
        post("/v1/jobs", content=nan, headers=headers),
        ["body", "spec", "kernel", "dataset", "inline", "X", 0, 1],
    )
    message = assert_422(
        post("/v1/jobs", json={"spec": sphere(n=4096, empirical_width=2**22)}), ["body", "spec"]
    )
    assert "compute budget" in message and "exceeds" in message
    dataset = ["body", "spec", "kernel", "dataset"]
    missing_class = {"kind": "kernel", "dataset": {"name": "iris", "classes": [7]}}
    assert "class 7 does not exist" in assert_422(
        post("/v1/jobs", json={"spec": missing_class}), [*dataset, "iris", "classes"]
    )
    ragged = {"kind": "kernel", "dataset": {"name": "inline", "X": [[1.0, 2.0], [3.0]], "y": [1.0, 2.0]}}
    assert_422(post("/v1/jobs", json={"spec": ragged}), [*dataset, "inline", "X"])
    short_y = {
        "kind": "kernel",
        "dataset": {"name": "inline", "X": [[1.0, 2.0], [3.0, 4.0]], "y": [1.0, 2.0, 3.0]},
    }
    assert_422(post("/v1/jobs", json={"spec": short_y}), [*dataset, "inline", "y"])
    huge = {"name": "inline", "X": [[1e300, 0.0], [0.0, 1.0]], "y": [1.0, -1.0]}
    assert_422(
        post("/v1/jobs", json={"spec": {"kind": "kernel", "dataset": huge}}),
        ["body", "spec", "kernel", "dataset", "inline", "X", 0, 0],
    )
    gpu = assert_422(
        post("/v1/jobs", json={"spec": {**sphere(), "device": "cuda"}}), ["body", "spec", "kernel", "device"]
    )
    assert "no worker serves the gpu queue" in gpu
    assert_422(stack.client.get("/v1/jobs", params={"cursor": "%%%"}), ["query", "cursor"])
    overflow = base64.urlsafe_b64encode(b"9" * 48).decode()
    assert_422(stack.client.get("/v1/jobs", params={"cursor": overflow}), ["query", "cursor"])
    assert_422(stack.client.get("/v1/jobs", params={"status": "sleeping"}), ["query", "status"])
    job = stack.submit(sphere(seed=5))
    assert_422(stack.client.get(f"/v1/jobs/{job['id']}", params={"wait": 1000}), ["query", "wait"])


def test_oversized_body_is_413(stack: Stack) -> None:
    limit = stack.settings.max_body_bytes
    big = b'{"spec": {"kind": "kernel"}, "pad": "' + b"x" * limit + b'"}'
    headers = {"content-type": "application/json"}
    assert stack.client.post("/v1/jobs", content=big, headers=headers).status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for start in range(0, len(big), 2**20):
            yield big[start : start + 2**20]

    assert stack.client.post("/v1/jobs", content=chunks(), headers=headers).status_code == 413


def test_health_and_readiness(stack: Stack) -> None:
    assert stack.client.get("/healthz").json() == {"status": "ok"}
    ready = stack.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"][0]["queues"] == ["cpu"]


def test_not_ready_without_broker_or_workers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = f"sqlite:///{tmp_path / 'store.db'}"
    dead = ServerSettings(
        data_dir=tmp_path, redis_url=f"unix://{tmp_path / 'nothing.sock'}", database_url=database
    )
    with TestClient(create_app(dead), raise_server_exceptions=False) as client:
        authorize(client, dead)
        response = client.get("/readyz")
        assert response.status_code == 503 and "broker unreachable" in response.json()["reason"]
        assert client.get("/healthz").status_code == 200
        submitted = client.post("/v1/jobs", json={"spec": {"kind": "kernel", "device": "cuda"}})
        assert submitted.status_code == 503 and "broker" in submitted.json()["detail"]
    server = EmbeddedRedis(tmp_path / "idle")
    server.start()
    try:
        idle = ServerSettings(data_dir=tmp_path, redis_url=server.url, database_url=database)
        with TestClient(create_app(idle)) as client:
            authorize(client, idle)
            response = client.get("/readyz")
            assert response.status_code == 503 and "no worker" in response.json()["reason"]
            job = client.post("/v1/jobs", json={"spec": sphere(seed=6)}).json()
            server.stop()  # a long-poll without Redis looks at the store instead of its events
            started = time.monotonic()
            polled = client.get(f"/v1/jobs/{job['id']}", params={"wait": 0.5})
            assert polled.status_code == 200 and polled.json()["status"] == "queued"
            assert 0.4 < time.monotonic() - started < 5
    finally:
        server.stop()


def test_a_train_job_runs_through_the_stack(stack: Stack) -> None:
    spec = {
        "kind": "train",
        "dataset": {"name": "sphere", "n": 16, "d": 4, "seed": 0},
        "width": 256,
        "optimizers": [{"name": "gd"}, {"name": "heavy_ball"}],
        "steps": 60,
    }
    job = stack.wait(stack.submit(spec)["id"])
    assert job["status"] == "succeeded", job
    result = TrainResult.model_validate(stack.client.get(job["links"]["result"]).json())
    assert [optimizer.name for optimizer in result.optimizers] == ["gd", "heavy_ball"]
    assert all(
        optimizer.runs[0].record["train_loss"][-1] < optimizer.runs[0].record["train_loss"][0]
        for optimizer in result.optimizers
    )
    too_wide = {**spec, "network": {"name": "fully_connected", "depth": 3}, "width": 8192, "steps": 10**6}
    message = assert_422(stack.client.post("/v1/jobs", json={"spec": too_wide}), ["body", "spec"])
    assert "budget" in message


def test_given_initial_weights_are_checked_at_submit_and_named_in_the_result(stack: Stack) -> None:
    W, a = [[0.5, -1.0], [1.0, 0.25], [0.0, 2.0]], [1.0, -1.0, 0.5]
    spec = {
        "kind": "train",
        "dataset": {"name": "sphere", "n": 8, "d": 2, "seed": 0},
        "width": 3,
        "optimizers": [{"name": "gd", "lr": 0.1}],
        "steps": 5,
    }
    short = {**spec, "initial": {"params": {"W": W[:2], "a": a}}}
    message = assert_422(
        stack.client.post("/v1/jobs", json={"spec": short}), ["body", "spec", "train", "initial"]
    )
    assert "W has shape (2, 2), but the two_layer net at width 3 on d = 2 has W (3, 2), a (3,)" in message
    job = stack.wait(stack.submit({**spec, "initial": {"params": {"W": W, "a": a}}})["id"])
    assert job["status"] == "succeeded", job
    [run] = TrainResult.model_validate(stack.client.get(job["links"]["result"]).json()).optimizers[0].runs
    numbers = [value for row in W for value in row] + a  # sorted names: W, a; little-endian float64
    assert run.initial_checksum == hashlib.sha256(struct.pack(f"<{len(numbers)}d", *numbers)).hexdigest()
