"""A worker on the gpu queue, on whatever machine runs the tests: it reports its devices' memory
in its heartbeat (NVML, read in the worker's parent without a CUDA context) and the API exposes
it at /metrics; a `"device": "cuda"` job goes to it and ends as the machine allows: on cuda where
the worker has a GPU, and otherwise as a failure that says so, never lost or left queued.
"""

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import redis
import torch
from fastapi.testclient import TestClient

from service.server.app import create_app
from service.server.metrics import worker_families
from service.server.processes import stop
from workers.gpus import GpuMemory, gpu_memory
from workers.heartbeat import PREFIX
from workers.store import make_engine, migrate

from .conftest import authorize, embedded_settings, start_worker, wait_for_workers
from .test_metrics import scrape, value

pytestmark = pytest.mark.timeout(120)

CUDA_JOB = {
    "kind": "kernel",
    "dataset": {"name": "sphere", "n": 16, "d": 4, "seed": 0},
    "device": "cuda",
}


@pytest.fixture(scope="module")
def gpu_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, redis.Redis, Path]]:
    """The API in process and one `ntkdyn worker --queues gpu` on an embedded Redis and SQLite;
    the API client, a Redis client and the worker's log."""
    folder = tmp_path_factory.mktemp("gpu-worker")
    with embedded_settings(folder, progress_interval=0.1) as settings:
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        log = folder / "worker.log"
        worker = start_worker(settings, log, queues="gpu")
        client = redis.Redis.from_url(settings.effective_redis_url)
        try:
            wait_for_workers(settings)
            with TestClient(create_app(settings)) as api:
                yield authorize(api, settings), client, log
        finally:
            stop(worker, grace=10)
            client.close()
            engine.dispose()


def test_the_heartbeat_carries_the_devices_memory(gpu_stack: tuple[TestClient, redis.Redis, Path]) -> None:
    api, client, _ = gpu_stack
    [key] = client.keys(PREFIX + "*")
    beat = json.loads(client.get(key))
    assert beat["queues"] == ["gpu"]
    expected = [asdict(gpu) for gpu in gpu_memory()]  # this machine's devices: none without a driver
    assert [(gpu["index"], gpu["uuid"], gpu["total"]) for gpu in beat["gpus"]] == [
        (gpu["index"], gpu["uuid"], gpu["total"]) for gpu in expected
    ]
    samples = scrape(api)
    totals = {labels: v for (name, labels), v in samples.items() if name == "ntkdyn_gpu_memory_total_bytes"}
    assert sorted(totals.values()) == sorted(float(gpu["total"]) for gpu in expected)


def test_a_cuda_job_runs_on_the_gpu_worker_or_fails_saying_why(
    gpu_stack: tuple[TestClient, redis.Redis, Path],
) -> None:
    api, _, log = gpu_stack
    posted = api.post("/v1/jobs", json={"spec": CUDA_JOB, "reuse": False})
    assert posted.status_code == 202, posted.text
    job = api.get(f"/v1/jobs/{posted.json()['id']}", params={"wait": 60}).json()
    if torch.cuda.is_available():
        assert job["status"] == "succeeded", job
        result = api.get(f"/v1/jobs/{job['id']}/result").json()
        assert str(result["device"]).startswith("cuda")
    else:
        assert job["status"] == "failed", (job, log.read_text()[-2000:])
        assert "no CUDA device" in job["error"]


def test_gpu_memory_becomes_two_gauges_per_device() -> None:
    gpus = [
        GpuMemory(0, "GPU-a", "NVIDIA H200", 5 << 30, 141 << 30),
        GpuMemory(1, "GPU-b", "NVIDIA H200", 0, 141 << 30),
    ]
    beat = {
        "name": "w@host",
        "queues": ["gpu"],
        "concurrency": 1,
        "at": 100.0,
        "gpus": [asdict(g) for g in gpus],
    }
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in worker_families([beat], now=101.0)
        for sample in family.samples
    }
    first = {"worker": "w@host", "gpu": "0", "model": "NVIDIA H200"}
    assert value(samples, "ntkdyn_gpu_memory_used_bytes", **first) == 5 << 30
    assert value(samples, "ntkdyn_gpu_memory_total_bytes", **first | {"gpu": "1"}) == 141 << 30
    assert value(samples, "ntkdyn_worker_heartbeat_age_seconds", worker="w@host") == 1.0
