"""POST-to-result latency of a tiny job on the embedded stack (`ntkdyn run`: its own redis-server,
SQLite, one worker), against the obvious alternative measured in the same run.

Each sample: POST /v1/jobs (an n = 8 kernel, never reused), then its result, by one of three
ways of waiting, interleaved: the result's long-poll `GET /v1/jobs/{id}/result?wait=10` (ours,
one call), the job's long-poll `GET /v1/jobs/{id}?wait=10` then the result, or a client that
polls `GET /v1/jobs/{id}` every millisecond then fetches the result (the obvious alternative).
Sequential, one client, keep-alive.

    python bench/latency.py [--samples 200]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

Wait = Callable[[httpx.Client, str], None]


def tiny(seed: int) -> dict:
    dataset = {"name": "sphere", "n": 8, "d": 4, "seed": seed}
    return {"spec": {"kind": "kernel", "dataset": dataset}, "reuse": False}


@contextmanager
def embedded_stack() -> Iterator[tuple[str, str]]:
    """`ntkdyn run` on a free port in a fresh data folder; its URL and the admin token."""
    with tempfile.TemporaryDirectory() as folder:
        env = os.environ | {
            "NTKDYN_DATA_DIR": folder,
            "NTKDYN_SUBMIT_RATE_PER_MINUTE": "100000",
            "NTKDYN_MAX_ACTIVE_JOBS_PER_USER": "100000",
        }
        command = [sys.executable, "-m", "service.cli", "run", "--port", "0"]
        log = Path(folder) / "run.log"  # a file, not a pipe: a full pipe would stall the server
        with log.open("w") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            yield until_up(process, log), (Path(folder) / "admin.token").read_text().strip()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


def until_up(process: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    """The URL `ntkdyn run` prints once it is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        for line in log.read_text().splitlines():
            if "ntkdyn is up at" in line:
                return line.split("ntkdyn is up at", 1)[1].split()[0]
        time.sleep(0.1)
    raise RuntimeError(f"ntkdyn run was not up: {log.read_text()[-2000:]}")


def result_long_poll(client: httpx.Client, job_id: str) -> None:
    client.get(f"/v1/jobs/{job_id}/result", params={"wait": 10}).raise_for_status()


def long_poll(client: httpx.Client, job_id: str) -> None:
    job = client.get(f"/v1/jobs/{job_id}", params={"wait": 10}).json()
    assert job["status"] == "succeeded", job
    client.get(f"/v1/jobs/{job_id}/result").raise_for_status()


def busy_poll(client: httpx.Client, job_id: str) -> None:
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] != "succeeded":
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.001)
    client.get(f"/v1/jobs/{job_id}/result").raise_for_status()


WAITS: dict[str, Wait] = {
    "`GET .../result?wait=` (the result's long-poll)": result_long_poll,
    "`GET /v1/jobs/{id}?wait=`, then the result": long_poll,
    "client polls every 1 ms, then the result": busy_poll,
}


def sample(client: httpx.Client, seed: int, wait: Wait) -> float:
    """Seconds from POST to the result's body."""
    start = time.perf_counter()
    posted = client.post("/v1/jobs", json=tiny(seed))
    assert posted.status_code == 202, posted.text
    wait(client, posted.json()["id"])
    return time.perf_counter() - start


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return 1000 * cuts[49], 1000 * cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    samples = parser.parse_args().samples
    with embedded_stack() as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for seed in range(20):  # warm-up: imports, connections, the worker's first jobs
                sample(client, seed, long_poll)
            found: dict[str, list[float]] = {name: [] for name in WAITS}
            for i in range(samples):  # interleaved: the same load on every way of waiting
                for number, (name, wait) in enumerate(WAITS.items()):
                    found[name].append(sample(client, 1000 + number * 100_000 + i, wait))
    print(f"{samples} tiny kernel jobs (n = 8), POST -> result, sequential, embedded stack")
    print("| wait | p50 (ms) | p99 (ms) |\n|---|---|---|")
    cuts = {name: percentiles(seconds) for name, seconds in found.items()}
    for name, (p50, p99) in cuts.items():
        print(f"| {name} | {p50:.1f} | {p99:.1f} |")
    (ours, _), *others = cuts.values()
    print("p50 ratios (alternative / ours): " + ", ".join(f"{p50 / ours:.2f}" for p50, _ in others))


if __name__ == "__main__":
    main()
