"""One user cannot fill a shared service: per-user limits on queued and running jobs and on
compute in 24 hours (settable by an admin), and a submit rate per token; over a limit the answer
is a 429 that names it and says when to retry. Real stack, SQLite and PostgreSQL."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from service.server.app import create_app
from service.server.embedded import EmbeddedRedis
from service.server.settings import ServerSettings

from .conftest import Stack, authorize
from .test_access import bearer, make_token
from .test_api import slow, sphere

SWEEP = {
    "kind": "sweep",
    "base": sphere(seed=700),
    "axes": [{"path": "dataset.seed", "values": [701, 702, 703]}],
    "metrics": [{"name": "lambda_min", "path": "spectrum.lambda_min"}],
}


def post(stack: Stack, token: str, spec: dict) -> httpx.Response:
    return stack.client.post("/v1/jobs", json={"spec": spec}, headers=bearer(token))


def test_active_jobs_are_capped_per_user_and_reuse_is_free(stack: Stack) -> None:
    alice = make_token(stack, "quota-alice")
    limits = stack.client.put("/v1/users/quota-alice/limits", json={"max_active_jobs": 2})
    assert limits.status_code == 200 and limits.json()["max_active_jobs"] == 2 and limits.json()["own_limits"]
    first, second = (post(stack, alice, slow(seed=710 + i)).json() for i in range(2))
    refused = post(stack, alice, slow(seed=712))
    assert refused.status_code == 429 and "max_active_jobs: at most 2" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 0
    again = post(stack, alice, slow(seed=710))  # identical to a running job: no new run, no quota
    assert again.status_code in (200, 202) and again.json()["id"] == first["id"]
    assert post(stack, alice, SWEEP).status_code == 429  # a sweep's children count one by one
    for job in (first, second):
        stack.client.delete(f"/v1/jobs/{job['id']}", headers=bearer(alice))
        stack.wait(job["id"])
    accepted = post(stack, alice, slow(seed=712))
    assert accepted.status_code == 202
    stack.client.delete(f"/v1/jobs/{accepted.json()['id']}")
    listed = {user["name"]: user for user in stack.client.get("/v1/users").json()}
    assert listed["quota-alice"]["max_active_jobs"] == 2 and listed["admin"]["own_limits"] is False


def test_daily_compute_is_capped_and_retry_after_is_when_room_frees(stack: Stack) -> None:
    bob = make_token(stack, "quota-bob")
    first = post(stack, bob, sphere(seed=720)).json()
    assert stack.wait(first["id"])["status"] == "succeeded"
    used = next(u for u in stack.client.get("/v1/users").json() if u["name"] == "quota-bob")["flops_24h"]
    assert used > 0
    stack.client.put("/v1/users/quota-bob/limits", json={"max_daily_flops": 1.5 * used})
    refused = post(stack, bob, sphere(seed=721))
    assert refused.status_code == 429 and "max_daily_flops" in refused.json()["detail"]
    assert 86000 < int(refused.headers["retry-after"]) <= 86400  # the first run ages out in ~24 h
    assert post(stack, bob, sphere(seed=720)).status_code == 200  # a cached answer costs nothing
    stack.client.put("/v1/users/quota-bob/limits", json={})  # back to the default
    assert post(stack, bob, sphere(seed=721)).status_code == 202


def test_a_burst_cannot_overshoot_the_active_quota(stack: Stack, served: str) -> None:
    """Twenty different submits at the same instant against a limit of five: five stored. The
    admin's jobs keep the one worker busy meanwhile, so none of carol's ends (and frees room)
    during the burst."""
    carol = make_token(stack, "quota-carol")
    stack.client.put("/v1/users/quota-carol/limits", json={"max_active_jobs": 5})
    blockers = [stack.submit(slow(seed=735 + i)) for i in range(3)]
    barrier = threading.Barrier(20)

    def submit(seed: int) -> int:
        with httpx.Client(base_url=served, timeout=60, headers=bearer(carol)) as client:
            barrier.wait()
            return client.post("/v1/jobs", json={"spec": slow(seed=730 + seed)}).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(submit, range(20)))
    assert sorted(codes) == [202] * 5 + [429] * 15, codes
    jobs = stack.client.get("/v1/jobs", params={"owner": "quota-carol"}).json()["items"]
    assert len(jobs) == 5
    for job in [*jobs, *blockers]:
        stack.client.delete(f"/v1/jobs/{job['id']}")
    for job in [*jobs, *blockers]:
        stack.wait(job["id"])


def test_submits_are_rate_limited_per_token(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    settings = ServerSettings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        submit_rate_per_minute=3,
    )
    if 60 - time.time() % 60 < 10:  # the count is per clock minute: start in a fresh one
        time.sleep(60 - time.time() % 60)
    with TestClient(create_app(settings)) as client:
        authorize(client, settings)
        codes = [client.post("/v1/jobs", json={"spec": sphere(seed=740 + i)}).status_code for i in range(3)]
        limited = client.post("/v1/jobs", json={"spec": sphere(seed=743)})
        other = client.post("/v1/tokens", json={"user": "rate-dana"}).json()["token"]
        fresh = client.post("/v1/jobs", json={"spec": sphere(seed=744)}, headers=bearer(other))
    assert codes == [202, 202, 202]
    assert limited.status_code == 429 and "3 submits a minute" in limited.json()["detail"]
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert fresh.status_code == 202  # another token has its own count
