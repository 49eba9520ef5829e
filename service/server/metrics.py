"""Prometheus metrics at /metrics: request counts and latencies by route, method and status
(prometheus-fastapi-instrumentator's middleware), and the fleet's jobs and workers read from the
store and the heartbeats at each scrape (a collector, so every API replica reports the same
numbers and none is lost when a process restarts). Each app has its own registry."""

import time
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


def job_families(stats: Statistics) -> Iterator[Metric]:
    """The store's counts as metric families."""
    per_queue = GaugeMetricFamily("ntkdyn_jobs", "jobs queued or running", labels=["queue", "status"])
    per_owner = GaugeMetricFamily(
        "ntkdyn_user_jobs", "jobs queued or running, by owner", labels=["owner", "status"]
    )
    queues: dict[tuple[str, str], int] = {}
    owners: dict[tuple[str, str], int] = {}
    for (queue, owner, status), count in stats.active.items():
        queues[queue, status] = queues.get((queue, status), 0) + count
        owners[owner, status] = owners.get((owner, status), 0) + count
    for labels, count in sorted(queues.items()):
        per_queue.add_metric(list(labels), count)
    for labels, count in sorted(owners.items()):
        per_owner.add_metric(list(labels), count)
    ended = CounterMetricFamily(
        "ntkdyn_jobs_ended", "jobs that ended, by kind and status", labels=["kind", "status"]
    )
    for labels, count in sorted(stats.ended.items()):
        ended.add_metric(list(labels), count)
    failed = CounterMetricFamily(
        "ntkdyn_job_failures", "failed jobs by kind and reason (workers.failures)", labels=["kind", "reason"]
    )
    for labels, count in sorted(stats.failures.items()):
        failed.add_metric(list(labels), count)
    redelivered = CounterMetricFamily(
        "ntkdyn_job_redeliveries", "deliveries of a job beyond its first (a worker lost it)", labels=["kind"]
    )
    for kind, count in sorted(stats.redeliveries.items()):
        redelivered.add_metric([kind], count)
    yield from (per_queue, per_owner, ended, failed, redelivered)
    yield histogram("ntkdyn_job_duration_seconds", "start to end of each ended job", stats.durations)


def worker_families(workers: Iterable[dict[str, Any]], now: float) -> Iterator[Metric]:
    """Live workers per queue, their processes, and each heartbeat's age."""
    count = GaugeMetricFamily("ntkdyn_workers", "workers with a live heartbeat", labels=["queue"])
    processes = GaugeMetricFamily("ntkdyn_worker_processes", "job slots of live workers", labels=["queue"])
    age = GaugeMetricFamily(
        "ntkdyn_worker_heartbeat_age_seconds", "seconds since each worker's last heartbeat", labels=["worker"]
    )
    per_queue: dict[str, list[int]] = {}
    for worker in workers:
        for queue in worker.get("queues", []):
            per_queue.setdefault(queue, []).append(int(worker.get("concurrency", 0)))
        if "at" in worker:
            age.add_metric([worker["name"]], max(0.0, now - float(worker["at"])))
    for queue, slots in sorted(per_queue.items()):
        count.add_metric([queue], len(slots))
        processes.add_metric([queue], sum(slots))
    yield from (count, processes, age)


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
