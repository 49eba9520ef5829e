"""Prometheus metrics at /metrics: request counts and latencies by route, method and status
(prometheus-fastapi-instrumentator's middleware), and the fleet's jobs and workers read from the
store and the heartbeats at each scrape (a collector, so every API replica reports the same
numbers and none is lost when a process restarts). Each app has its own registry."""

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator

from workers.heartbeat import live_workers
from workers.store.statistics import Statistics, statistics

DURATION_BUCKETS = (0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0)
"""Upper bounds (seconds) of the job duration histogram: tiny kernels to hour-long sweeps."""


def histogram(name: str, documentation: str, by_kind: dict[str, list[float]]) -> HistogramMetricFamily:
    """A cumulative histogram per kind from the observed values."""
    family = HistogramMetricFamily(name, documentation, labels=["kind"])
    for kind, values in sorted(by_kind.items()):
        buckets = [(str(bound), sum(value <= bound for value in values)) for bound in DURATION_BUCKETS]
        family.add_metric([kind], [*buckets, ("+Inf", len(values))], sum_value=sum(values))
    return family


Labels = tuple[str, ...]


def family(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    documentation: str,
    labels: list[str],
    counts: dict[Labels, float],
) -> Metric:
    """A gauge or counter family with one sample per label tuple, in label order."""
    metric = kind(name, documentation, labels=labels)
    for values, count in sorted(counts.items()):
        metric.add_metric(list(values), count)
    return metric


def summed(counts: dict[Labels, int], keep: tuple[int, ...]) -> dict[Labels, float]:
    """The counts summed over every label position but those in `keep`."""
    totals: Counter[Labels] = Counter()
    for labels, count in counts.items():
        totals[tuple(labels[i] for i in keep)] += count
    return dict(totals)


def job_families(stats: Statistics) -> Iterator[Metric]:
    """The store's counts as metric families (stats.active is keyed by queue, owner, status)."""
    yield family(
        GaugeMetricFamily,
        "ntkdyn_jobs",
        "jobs queued or running",
        ["queue", "status"],
        summed(stats.active, (0, 2)),
    )
    yield family(
        GaugeMetricFamily,
        "ntkdyn_user_jobs",
        "jobs queued or running, by owner",
        ["owner", "status"],
        summed(stats.active, (1, 2)),
    )
    yield family(
        CounterMetricFamily,
        "ntkdyn_jobs_ended",
        "jobs that ended, by kind and status",
        ["kind", "status"],
        dict(stats.ended),
    )
    yield family(
        CounterMetricFamily,
        "ntkdyn_job_failures",
        "failed jobs by kind and reason (workers.failures)",
        ["kind", "reason"],
        dict(stats.failures),
    )
    yield family(
        CounterMetricFamily,
        "ntkdyn_job_redeliveries",
        "deliveries of a job beyond its first (a worker lost it)",
        ["kind"],
        {(kind,): count for kind, count in stats.redeliveries.items()},
    )
    yield histogram("ntkdyn_job_duration_seconds", "start to end of each ended job", stats.durations)


def worker_families(workers: Iterable[dict[str, Any]], now: float) -> Iterator[Metric]:
    """Live workers per queue, their job slots, each heartbeat's age, and the memory of each GPU
    worker's devices as its last beat read it (NVML: every process's use of the device)."""
    slots: dict[str, list[int]] = {}
    ages: dict[Labels, float] = {}
    used: dict[Labels, float] = {}
    total: dict[Labels, float] = {}
    for worker in workers:
        for queue in worker.get("queues", []):
            slots.setdefault(queue, []).append(int(worker.get("concurrency", 0)))
        if "at" in worker:
            ages[worker["name"],] = max(0.0, now - float(worker["at"]))
        for gpu in worker.get("gpus", []):
            labels = (worker["name"], str(gpu["index"]), gpu["name"])
            used[labels], total[labels] = float(gpu["used"]), float(gpu["total"])
    per_queue = slots.items()
    yield family(
        GaugeMetricFamily,
        "ntkdyn_workers",
        "workers with a live heartbeat",
        ["queue"],
        {(queue,): len(each) for queue, each in per_queue},
    )
    yield family(
        GaugeMetricFamily,
        "ntkdyn_worker_processes",
        "job slots of live workers",
        ["queue"],
        {(queue,): sum(each) for queue, each in per_queue},
    )
    yield family(
        GaugeMetricFamily,
        "ntkdyn_worker_heartbeat_age_seconds",
        "seconds since each worker's last heartbeat",
        ["worker"],
        ages,
    )
    gpu_labels = ["worker", "gpu", "model"]
    yield family(
        GaugeMetricFamily,
        "ntkdyn_gpu_memory_used_bytes",
        "memory in use on a GPU worker's device",
        gpu_labels,
        used,
    )
    yield family(
        GaugeMetricFamily,
        "ntkdyn_gpu_memory_total_bytes",
        "memory of a GPU worker's device",
        gpu_labels,
        total,
    )


class FleetCollector(Collector):
    """Reads the app's store and Redis at each scrape."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        state = self.app.state
        if not hasattr(state, "store"):  # scraped before the lifespan started: nothing to say
            return
        yield from job_families(statistics(state.store.engine))
        yield from worker_families(live_workers(state.redis), time.time())


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Instrument every request and register the fleet collector; the registry /metrics serves."""
    registry = CollectorRegistry()
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=["/metrics"],
        should_exclude_streaming_duration=True,
        registry=registry,
    ).instrument(app, metric_namespace="ntkdyn")
    registry.register(FleetCollector(app))
    return registry
