"""Celery tasks: thin. Load the job, call the science, write the outcome once."""

import logging
import os
import time

import redis
import torch
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from pydantic import TypeAdapter

from schemas.experiments import ExperimentSpec
from schemas.jobs import JobStatus
from workers.celery_app import RUN_JOB, celery_app
from workers.compute import run_experiment
from workers.heartbeat import start_heartbeat
from workers.settings import get_settings
from workers.store import JobStore, make_engine

log = logging.getLogger(__name__)
SPEC = TypeAdapter(ExperimentSpec)


class JobCancelled(Exception):
    """Raised from the progress callback when the user cancelled the job."""


class ThrottledProgress:
    """Progress callback that writes to the store at most every `interval` seconds and raises
    JobCancelled when that write finds a cancel request."""

    def __init__(self, store: JobStore, job_id: str, interval: float) -> None:
        self.store, self.job_id, self.interval = store, job_id, interval
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        if self.store.report(self.job_id, fraction, message):
            raise JobCancelled


_store: tuple[int, JobStore] | None = None


def store() -> JobStore:
    """One store per process, made after the fork (engines must not cross it)."""
    global _store
    if _store is None or _store[0] != os.getpid():
        _store = (os.getpid(), JobStore(make_engine(get_settings().effective_database_url)))
        configure_torch()
    return _store[1]


def configure_torch() -> None:
    """Share the cores among the worker's processes; runs in the child, never in the parent
    (the parent imports torch but runs no op, so forked children do not deadlock)."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // get_settings().worker_concurrency))


@worker_ready.connect
def _announce(sender, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings()
    queues = [queue.name for queue in sender.app.amqp.queues.consume_from.values()]
    client = redis.Redis.from_url(settings.effective_redis_url)
    start_heartbeat(client, sender.hostname, queues, settings.worker_heartbeat_seconds)


@celery_app.task(name=RUN_JOB)
def run_job(job_id: str) -> None:
    """Run job `job_id` if it is still to be done; a redelivered finished job is a no-op."""
    settings = get_settings()
    jobs = store()
    row = jobs.start(job_id, settings.max_attempts)
    if row is None:
        log.info("job %s: nothing to do", job_id)
        return
    progress = ThrottledProgress(jobs, job_id, settings.progress_interval)
    try:
        result = run_experiment(SPEC.validate_python(row.spec), progress)
    except JobCancelled:
        jobs.finish(job_id, JobStatus.cancelled)
    except ValueError as error:
        jobs.finish(job_id, JobStatus.failed, error=str(error))
    except SoftTimeLimitExceeded:
        error = f"the job ran longer than the limit of {settings.max_job_seconds:g} s"
        jobs.finish(job_id, JobStatus.failed, error=error)
    except Exception as error:  # any other failure is ours: log it, tell the user its kind
        log.exception("job %s failed", job_id)
        jobs.finish(job_id, JobStatus.failed, error=f"internal error ({type(error).__name__})")
    else:
        jobs.finish(job_id, JobStatus.succeeded, result=result.model_dump(mode="json"))
