"""Prometheus metrics at /metrics, on the real stack (Redis, a Celery worker, the store).

A lab admin scrapes /metrics with a bearer token and expects: no answer without an admin token;
requests counted by route, method and status with their latencies; the fleet read at each scrape:
jobs ended by kind and status, failures by reason, durations by kind in a histogram that counts
every ended run, jobs queued and running per queue and per owner, and the live workers with their
job slots and heartbeat ages; nothing that the store does not say.
"""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from workers.failures import GAVE_UP, INTERNAL, INVALID_SPEC, SWEEP, TIME_LIMIT, reason_of

from .conftest import Stack
from .test_access import bearer, make_token
from .test_api import slow, sphere

TINY = {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]}  # the kernel is zero


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the client's API's /metrics: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_for_admins_only(stack: Stack) -> None:
    assert stack.client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    member = make_token(stack, "metrics-member")
    assert stack.client.get("/metrics", headers=bearer(member)).status_code == 403


def test_jobs_and_requests_are_counted_as_the_store_says(stack: Stack) -> None:
    before = scrape(stack.client)
    good = stack.wait(stack.submit(sphere(seed=901))["id"])
    bad = stack.wait(stack.submit({"kind": "kernel", "dataset": TINY})["id"])
    assert (good["status"], bad["status"]) == ("succeeded", "failed")
    stack.client.get("/v1/jobs/not-a-job")
    after = scrape(stack.client)
    ended = "ntkdyn_jobs_ended_total"
    assert (
        value(after, ended, kind="kernel", status="succeeded")
        == value(before, ended, kind="kernel", status="succeeded") + 1
    )
    failures = "ntkdyn_job_failures_total"
    assert (
        value(after, failures, kind="kernel", reason="input")
        == value(before, failures, kind="kernel", reason="input") + 1
    )
    count = "ntkdyn_job_duration_seconds_count"
    assert value(after, count, kind="kernel") == value(before, count, kind="kernel") + 2
    assert value(after, "ntkdyn_job_duration_seconds_bucket", kind="kernel", le="+Inf") == value(
        after, count, kind="kernel"
    )
    assert value(after, "ntkdyn_job_duration_seconds_sum", kind="kernel") > 0
    # requests by handler, method and status; unknown jobs are a 404 on the templated route
    requests = "ntkdyn_http_requests_total"
    labels = {"handler": "/v1/jobs/{job_id}", "method": "GET", "status": "404"}
    assert value(after, requests, **labels) >= value(before, requests, **labels) + 1
    assert value(after, requests, handler="/v1/jobs", method="POST", status="202") >= 2


def test_queues_owners_and_workers_are_seen(stack: Stack) -> None:
    busy = stack.submit(slow(seed=902))
    stack.wait_running(busy["id"])
    samples = scrape(stack.client)
    assert value(samples, "ntkdyn_jobs", queue="cpu", status="running") >= 1
    assert value(samples, "ntkdyn_user_jobs", owner="admin", status="running") >= 1
    assert value(samples, "ntkdyn_workers", queue="cpu") == 1
    assert value(samples, "ntkdyn_worker_processes", queue="cpu") >= 1
    ages = [v for (name, _labels), v in samples.items() if name == "ntkdyn_worker_heartbeat_age_seconds"]
    assert len(ages) == 1 and 0 <= ages[0] < 3 * stack.settings.worker_heartbeat_seconds + 1
    stack.client.delete(f"/v1/jobs/{busy['id']}")
    stack.wait(busy["id"])


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (f"{TIME_LIMIT} of 60 s", "time_limit"),
        (f"{INVALID_SPEC}: dataset.n: too large", "invalid_spec"),
        (f"{INTERNAL} (RuntimeError)", "internal"),
        (f"{GAVE_UP} 3 attempts (the worker died or was killed each time)", "worker_lost"),
        (f"{SWEEP}: no rows", "sweep"),
        ("the kernel is zero: the inputs are all zero", "input"),
        (None, "input"),
    ],
)
def test_failure_messages_map_to_a_closed_set_of_reasons(error: str | None, reason: str) -> None:
    assert reason_of(error) == reason
