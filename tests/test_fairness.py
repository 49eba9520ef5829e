"""Fair dispatch on a shared worker: one user's two hundred queued jobs do not starve another
user's single job, which starts as soon as the worker is free (before any more of the first
user's). Real stack, one worker of one process, SQLite and PostgreSQL."""

import time

from .conftest import Stack
from .test_access import bearer, make_token
from .test_api import sphere


def busy(seed: int) -> dict:
    """A kernel job of a few hundred milliseconds: 200 of them are a minute of work."""
    return sphere(n=64, seed=seed, empirical_width=2**16)


def test_a_single_job_starts_as_soon_as_the_worker_frees(stack: Stack) -> None:
    hoarder = [make_token(stack, "fair-a") for _ in range(2)]  # two tokens: 100 submits each, under the rate
    other = make_token(stack, "fair-b")
    stack.client.put("/v1/users/fair-a/limits", json={"max_active_jobs": 500})
    backlog = []
    for seed in range(200):
        response = stack.client.post(
            "/v1/jobs", json={"spec": busy(800 + seed)}, headers=bearer(hoarder[seed % 2])
        )
        assert response.status_code == 202, response.text
        backlog.append(response.json()["id"])
    while stack.client.get(f"/v1/jobs/{backlog[0]}").json()["status"] == "queued":
        time.sleep(0.05)
    queued_ahead = len(
        stack.client.get("/v1/jobs", params={"owner": "fair-a", "status": "queued", "limit": 200}).json()[
            "items"
        ]
    )
    single = stack.client.post("/v1/jobs", json={"spec": busy(799)}, headers=bearer(other))
    done = stack.wait(single.json()["id"], timeout=120)
    assert done["status"] == "succeeded", done
    jobs = stack.client.get("/v1/jobs", params={"owner": "fair-a", "limit": 200}).json()["items"]
    started_between = [
        job["id"]
        for job in jobs
        if job["started_at"] is not None
        and single.json()["created_at"] < job["started_at"] < done["started_at"]
    ]
    # at most the job that a dispatch pass sent before the single job arrived, never a queue of them
    assert len(started_between) <= 1, started_between
    # the premise: a FIFO queue would have run many of the backlog first (200 submits on a loaded
    # 2-core CI machine with PostgreSQL took long enough for 153 to finish: 47 were left)
    assert queued_ahead >= 20, f"only {queued_ahead} of the backlog were still waiting"
    waiting = [job for job in jobs if job["status"] == "queued"]
    for job in waiting:
        stack.client.delete(f"/v1/jobs/{job['id']}")
