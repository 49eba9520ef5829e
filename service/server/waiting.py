"""Long-polls: a job once it has finished, or as it is when the wait runs out.

Woken by the job's event stream (the worker publishes the end right after storing it), so a
tiny job's answer leaves as soon as its end is stored; the store stays the truth, read after
each event that ends the job and after each STORE_CHECK seconds without one (an end stored
while Redis lost its event). Without Redis, the store is read every POLL_SECONDS.
"""

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import Query
from fastapi.concurrency import run_in_threadpool
from redis.exceptions import RedisError

from schemas import JobStatus
from workers.events import events_after
from workers.store import JobRow, JobStore

log = logging.getLogger(__name__)
WAIT_MAX = 60.0
POLL_SECONDS = 0.2
"""How often a long-poll looks at the store while Redis is unreachable."""
STORE_CHECK = 1.0
"""Seconds a long-poll waits on the event stream before it looks at the store anyway."""

WaitQuery = Annotated[float, Query(ge=0, le=WAIT_MAX, description="seconds to wait for the job's end")]


async def finished_within(
    job: JobRow, store: JobStore, client: Any, wait: float, cursor: str | None
) -> JobRow:
    """The job once it has finished, or as it is after `wait` seconds (at once for 0); `job` was
    read after the newest event `cursor` (None: Redis did not answer, so the store is polled)."""
    if wait <= 0 or JobStatus(job.status).finished:
        return job
    deadline = time.monotonic() + wait
    if cursor is not None:
        try:
            return await until_finished(job, store, client, deadline, cursor)
        except RedisError as error:  # the events are lost for now, the store is not: poll it
            log.warning("waiting on job %s without its events: %s", job.id, error)
    return await poll_until_finished(job, store, deadline)


async def until_finished(job: JobRow, store: JobStore, client: Any, deadline: float, cursor: str) -> JobRow:
    """The job once it has finished, or as it is at `deadline`, woken by its event stream after
    `cursor`, the newest event before `job` was read."""
    while not JobStatus(job.status).finished and (left := deadline - time.monotonic()) > 0:
        events = await events_after(client, job.id, cursor, min(left, STORE_CHECK))
        cursor = events[-1].id if events else cursor
        if not events or any(event.finished for event in events):
            job = await run_in_threadpool(store.get, job.id) or job
    return job


async def poll_until_finished(job: JobRow, store: JobStore, deadline: float) -> JobRow:
    """The job once it has finished, or as it is at `deadline`, looking every POLL_SECONDS."""
    while not JobStatus(job.status).finished and time.monotonic() < deadline:
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        job = await run_in_threadpool(store.get, job.id) or job
    return job
