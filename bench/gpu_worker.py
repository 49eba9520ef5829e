"""GPU smoke check through the real worker: `ntkdyn run` (API, embedded Redis and SQLite) in a
fresh data folder, plus `ntkdyn worker --queues gpu` on the same folder (the pool of the compose
file's worker-gpu, prefork with one child, unless --pool says otherwise). A small kernel job and
a small train job with `"device": "cuda"` go through the HTTP API to the gpu queue; each must
succeed and its result must say it ran on cuda. Prints the wall time of each: POST to the
finished job, and the worker's run (its start to its end in the store; the first cuda job
includes the pool child's CUDA start); then the device memory /metrics shows from the worker's
heartbeat.

Without a CUDA device it prints "no CUDA device: skipped" and exits 0. Run from the repository
root: `python bench/gpu_worker.py` (bench/gpu.sh does).
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import torch
from latency import until_up

from service.server.processes import spawn, stop

KERNEL = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 256, "d": 10, "seed": 0},
    "network": {"name": "two_layer", "trained": "both"},
    "empirical": {"widths": [1024, 8192], "replicates": 2, "seed": 0},
    "device": "cuda",
}
TRAIN = {
    "kind": "train",
    "dataset": {"name": "sphere", "n": 64, "d": 8, "seed": 0},
    "network": {"name": "two_layer"},
    "width": 4096,
    "optimizers": [{"name": "gd"}, {"name": "heavy_ball"}],
    "replicates": 4,
    "steps": 200,
    "device": "cuda",
}
TIMEOUT = 300.0
"""Seconds for the gpu worker to report in, and for each job to end."""
ELSEWHERE = ("REDIS_URL", "NTKDYN_REDIS_URL", "DATABASE_URL", "NTKDYN_DATABASE_URL")
"""Settings that would point the stack away from its embedded Redis and SQLite."""


@contextmanager
def gpu_stack(pool: str) -> Iterator[tuple[httpx.Client, Path]]:
    """`ntkdyn run` and `ntkdyn worker --queues gpu --pool POOL` on one fresh data folder; a
    client of the API with the admin token, and the gpu worker's log."""
    with tempfile.TemporaryDirectory() as folder:
        env = {key: value for key, value in os.environ.items() if key not in ELSEWHERE}
        env["NTKDYN_DATA_DIR"] = folder
        log = Path(folder) / "run.log"  # a file, not a pipe: a full pipe would stall the server
        stack = spawn([sys.executable, "-m", "service.cli", "run", "--port", "0"], env=env, log_file=log)
        worker, worker_log = None, Path(folder) / "gpu-worker.log"
        try:
            url = until_up(stack, log)
            argv = [sys.executable, "-m", "service.cli", "worker", "--queues", "gpu", "--pool", pool]
            worker = spawn(argv, env=env, log_file=worker_log)
            token = (Path(folder) / "admin.token").read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=90) as client:
                yield client, worker_log
        finally:
            if worker is not None:
                stop(worker, grace=10)
            stop(stack, grace=30)


def wait_for_gpu_worker(client: httpx.Client, log: Path) -> float:
    """Seconds until a worker on the gpu queue is in the heartbeats."""
    began = time.monotonic()
    while time.monotonic() - began < TIMEOUT:
        workers = client.get("/readyz").json().get("workers") or []
        if any("gpu" in worker.get("queues", []) for worker in workers):
            return time.monotonic() - began
        time.sleep(0.2)
    raise SystemExit(f"no gpu worker reported in {TIMEOUT:g} s\n{log.read_text()[-3000:]}")


def gpu_memory_metric(client: httpx.Client) -> list[str]:
    """The gpu worker's device memory as /metrics shows it, one line per device."""
    lines = client.get("/metrics").text.splitlines()
    shown = [line for line in lines if line.startswith("ntkdyn_gpu_memory_")]
    assert any(line.startswith("ntkdyn_gpu_memory_total_bytes{") for line in shown), "no GPU memory metric"
    return shown


def run_job(client: httpx.Client, spec: dict, log: Path) -> tuple[dict, float, float]:
    """Submit `spec`, wait for its end; the result, the POST-to-end and the worker's seconds."""
    began = time.monotonic()
    posted = client.post("/v1/jobs", json={"spec": spec, "reuse": False})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    job = posted.json()
    while job["status"] in ("queued", "running") and time.monotonic() - began < TIMEOUT:
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": 30}).json()
    wall = time.monotonic() - began
    if job["status"] != "succeeded":
        raise SystemExit(f"{spec['kind']} job {job['status']}: {job.get('error')}\n{log.read_text()[-3000:]}")
    started, finished = (datetime.fromisoformat(job[name]) for name in ("started_at", "finished_at"))
    result = client.get(f"/v1/jobs/{job_id}/result").json()
    return result, wall, (finished - started).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", choices=["prefork", "solo", "threads"], default="prefork")
    pool = parser.parse_args().pool
    if not torch.cuda.is_available():  # this process only: the worker is a fresh one
        print("no CUDA device: skipped")
        return
    with gpu_stack(pool) as (client, log):
        print(
            f"`ntkdyn worker --queues gpu --pool {pool}` reported in {wait_for_gpu_worker(client, log):.1f} s"
        )
        for spec in (KERNEL, TRAIN):
            result, wall, ran = run_job(client, spec, log)
            assert str(result["device"]).startswith("cuda"), f"{spec['kind']} ran on {result['device']}"
            print(
                f"{spec['kind']} job on {result['device']}: POST to end {wall:.2f} s, worker ran it {ran:.2f} s"
            )
        print("\n".join(gpu_memory_metric(client)))
    print(f"gpu worker smoke check passed ({torch.cuda.get_device_name(0)}, pool {pool})")


if __name__ == "__main__":
    main()
