"""Celery tasks: thin. Load the job, call the science, write the outcome once.

Only workers import this module (it holds the worker's Celery app and imports torch); the
parent process imports torch but runs no op and never initialises CUDA (not even
`torch.cuda.is_available()`), so its forked pool children neither deadlock nor find CUDA unusable.
"""

import logging
import os
import time
from functools import cache

import redis
import torch
from billiard.exceptions import TimeLimitExceeded
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import celeryd_after_setup, task_failure, worker_process_init, worker_ready
from celery.worker import WorkController
from kombu.exceptions import OperationalError
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import LockError
from sqlalchemy.exc import SQLAlchemyError

from schemas.common import validation_summary
from schemas.experiments import ExperimentSpec
from schemas.jobs import JobStatus
from workers import failures, sweeps
from workers.celery_app import RUN_JOB, make_celery
from workers.claims import claimed
from workers.compute import run_experiment
from workers.dispatch import Dispatcher
from workers.events import EventLog
from workers.gpus import gpu_fields
from workers.heartbeat import start_heartbeat
from workers.settings import get_settings
from workers.store import JobRow, JobStore, make_engine

log = logging.getLogger(__name__)
SPEC = TypeAdapter(ExperimentSpec)
celery_app = make_celery(get_settings())


class JobCancelled(Exception):
    """Raised from the progress callback when the user cancelled the job."""


class ThrottledProgress:
    """Progress callback that writes to the store and publishes a progress event at most every
    `interval` seconds, and raises JobCancelled when that write finds a cancel request.

    It also holds the job to its time limit on every pool: a call `limit` seconds or more after
    the start raises SoftTimeLimitExceeded, which fails the job as Celery's soft limit does.
    Celery ignores time limits on the solo and threads pools, so there this check is the only
    limit: a computation between two reports (one long torch op, a dense eigendecomposition)
    runs on until its next report, and one that never reports again is never stopped, since
    the job runs in the worker's own process and nothing can kill it alone. On prefork,
    Celery's soft limit also interrupts Python code between reports, and its hard limit
    (`max_job_seconds` + 30 s: SIGKILL of the pool child) is the backstop for the rest."""

    def __init__(self, store: JobStore, events: EventLog, job_id: str, interval: float, limit: float) -> None:
        self.store, self.events, self.job_id, self.interval = store, events, job_id, interval
        # the start was just written: a job shorter than one interval writes no progress
        self.last = time.monotonic()
        self.deadline = self.last + limit

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            raise SoftTimeLimitExceeded
        if now - self.last < self.interval:
            return
        self.last = now
        cancelled = self.store.report(self.job_id, fraction, message)
        self.events.progress(self.job_id, fraction, message)
        if cancelled:
            raise JobCancelled


_store: tuple[int, JobStore] | None = None


def store() -> JobStore:
    """One store per process, made in that process (engines must not cross a fork)."""
    global _store
    if _store is None or _store[0] != os.getpid():
        _store = (os.getpid(), JobStore(make_engine(get_settings().effective_database_url)))
    return _store[1]


@cache
def broker() -> redis.Redis:
    """One Redis client per worker (redis-py renews its connections in a forked child)."""
    return redis.Redis.from_url(get_settings().effective_redis_url, socket_timeout=5)


@cache
def events() -> EventLog:
    """One event log per worker."""
    return EventLog(broker(), get_settings().events_ttl_seconds)


@worker_process_init.connect
def _configure_torch(**_kwargs: object) -> None:
    """Share the cores among the pool's processes, once per child."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // get_settings().worker_concurrency))


@celeryd_after_setup.connect
def _announce(sender: str, instance: WorkController, **_kwargs: object) -> None:
    """Beat from before the worker consumes, so that the API never reads a job's claim by a
    worker it has not heard from; a worker on the gpu queue adds its devices' memory (NVML,
    no CUDA context in this parent). A beat that Redis does not answer within a period fails, once,
    and is tried again a period later, rather than hanging past the heartbeat's lifetime."""
    every = get_settings().worker_heartbeat_seconds
    queues = [queue.name for queue in instance.app.amqp.queues.consume_from.values()]
    url = get_settings().effective_redis_url
    client = redis.Redis.from_url(url, socket_timeout=every, socket_connect_timeout=every, retry=None)
    probe = gpu_fields if "gpu" in queues else None
    start_heartbeat(client, sender, queues, instance.concurrency, every, probe)


@task_failure.connect
def _hard_time_limit(sender=None, task_id: str | None = None, exception=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """The pool killed a child past the hard time limit: the task never wrote its outcome, and
    Celery acknowledged it. Runs in the worker's parent, so it uses a short-lived engine."""
    if task_id is None or not isinstance(exception, TimeLimitExceeded):
        return
    engine = make_engine(get_settings().effective_database_url)
    try:
        limit = get_settings().max_job_seconds
        error = f"{failures.TIME_LIMIT} of {limit:g} s and was killed"
        jobs = JobStore(engine)
        announce(jobs, jobs.finish(task_id, JobStatus.failed, error=error))
    finally:
        engine.dispose()


def outcome(spec: dict, progress: ThrottledProgress) -> tuple[JobStatus, dict | None, str | None]:
    """Run the science of a stored spec; the final status, result document and error message.
    Every message is one line a user can act on: a spec that no longer validates or a result
    that does not (a non-finite number) is summarised by field, never dumped."""
    try:
        validated = SPEC.validate_python(spec)
    except ValidationError as error:
        return JobStatus.failed, None, f"{failures.INVALID_SPEC}: {validation_summary(error)}"
    try:
        result = run_experiment(validated, progress)
    except JobCancelled:
        return JobStatus.cancelled, None, None
    except ValidationError as error:  # a result model refused what the computation produced
        return (
            JobStatus.failed,
            None,
            f"{failures.INVALID_RESULT}: {validation_summary(error)}",
        )
    except ValueError as error:
        return JobStatus.failed, None, str(error)
    except SoftTimeLimitExceeded:
        return (
            JobStatus.failed,
            None,
            f"{failures.TIME_LIMIT} of {get_settings().max_job_seconds:g} s",
        )
    except Exception as error:  # any other failure is ours: log it, tell the user its kind
        log.exception("job %s failed", progress.job_id)
        return JobStatus.failed, None, f"{failures.INTERNAL} ({type(error).__name__})"
    return JobStatus.succeeded, result.model_dump(mode="json"), None


@celery_app.task(name=RUN_JOB, bind=True)
def run_job(self: Task, job_id: str) -> None:
    """Run job `job_id` if it is still to be done, claimed for this worker while it runs (so
    that the job is sent again soon if the worker dies); a redelivered finished job is a no-op."""
    with claimed(broker(), job_id, self.request.hostname):
        run(job_id)


def run(job_id: str) -> None:
    """Claim a delivery of the job in the store, run it, and write its outcome once."""
    settings = get_settings()
    jobs = store()
    row = jobs.start(job_id, settings.max_attempts)
    if row is None:
        log.info("job %s: nothing to do", job_id)
        announce(jobs, jobs.get(job_id))  # it may have ended just now: cancelled, or out of attempts
        return
    events().status(row)
    progress = ThrottledProgress(jobs, events(), job_id, settings.progress_interval, settings.max_job_seconds)
    status, result, error = outcome(row.spec, progress)
    try:
        ended = jobs.finish(job_id, status, result=result, error=error)
    except SQLAlchemyError:
        log.exception("job %s: the store refused its outcome", job_id)
        ended = jobs.finish(job_id, JobStatus.failed, error=failures.NOT_STORED)
    announce(jobs, ended)
    dispatch()


def dispatch() -> None:
    """This worker's slot is free (or it just came up): send the next fair jobs. A broker or
    store failure is the API's periodic pass to mend."""
    try:
        Dispatcher(store(), broker(), celery_app).run_pass()
    except (redis.RedisError, OperationalError, SQLAlchemyError, LockError) as error:
        log.warning("dispatch after a job skipped: %s", error)


@worker_ready.connect
def _first_dispatch(**_kwargs: object) -> None:
    """A new worker is new capacity: fill it at once rather than at the API's next pass."""
    dispatch()


def announce(jobs: JobStore, row: JobRow | None) -> None:
    """Publish the state of a job that ended (None: nothing ended) and bring every sweep that
    waits for it up to date."""
    if row is None:
        return
    events().status(row)
    for sweep in jobs.sweeps_waiting_for(row.id):
        sweeps.advance(jobs, sweep, events())
