"""/v1/jobs/{id}/events: a job's progress and status changes as Server-Sent Events.

The stream opens with the job's state from the store (event `status`, so a late listener learns
how the job ended), then follows the job's Redis stream (`workers.events`) with blocking reads:
`progress` events while it runs, `status` events when its status changes, and a keep-alive
comment whenever nothing happened for `events_keepalive_seconds`. It ends after the status event
that finishes the job. Every event's `id` can come back as `Last-Event-ID` to resume after it.
"""

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import redis
import redis.asyncio
from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from schemas import JobStatus
from workers.events import ID_PATTERN, JobEvent, events_after, newest_id, row_data
from workers.store import JobStore

from ..deps import AsyncRedisDep, JobDep, SettingsDep, StoreDep
from ..responses import A_JOB, answers

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
KEEPALIVE = ": keep-alive\n\n"


LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", pattern=ID_PATTERN, description="resume after this event id"),
]


def sse(event: JobEvent) -> str:
    """One event in the text/event-stream format."""
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(event.data)}\n\n"


class JobStream:
    """The events of one job, as text/event-stream chunks."""

    def __init__(self, client: redis.asyncio.Redis, store: JobStore, job_id: str, keepalive: float) -> None:
        self.client, self.store, self.job_id, self.keepalive = client, store, job_id, keepalive

    async def opening(self, first: JobEvent) -> AsyncIterator[str]:
        """The stored state, then (unless it is final) the events after it."""
        yield sse(first)
        if not first.finished:
            async for chunk in self.follow(first.id, wait_first=True):
                yield chunk

    async def follow(self, cursor: str, wait_first: bool) -> AsyncIterator[str]:
        """The events after `cursor` until the one that finishes the job. A read that finds none
        looks at the store (the end may be stored without its event having reached Redis) and,
        after a wait, sends a keep-alive comment."""
        block = self.keepalive if wait_first else None
        try:
            while True:
                events = await events_after(self.client, self.job_id, cursor, block)
                for event in events:
                    yield sse(event)
                    if event.finished:
                        return
                    cursor = event.id
                if not events:
                    if (ended := await self.stored_end(cursor)) is not None:
                        yield sse(ended)
                        return
                    if block is not None:
                        yield KEEPALIVE
                block = self.keepalive
        except redis.RedisError as error:  # the client resumes from the last id it received
            log.warning("event stream of job %s interrupted: %s", self.job_id, error)

    async def stored_end(self, event_id: str) -> JobEvent | None:
        """The job's final status in the store as an event, or None while it has not finished."""
        row = await run_in_threadpool(self.store.get, self.job_id)
        if row is None or not JobStatus(row.status).finished:
            return None
        return JobEvent(id=event_id, kind="status", data=row_data(row))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the job's events until it ends"},
        **answers(*A_JOB),
    },
)
async def job_events(
    job: JobDep,
    store: StoreDep,
    settings: SettingsDep,
    client: AsyncRedisDep,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Progress and status changes of the job as Server-Sent Events, ending when the job ends.
    Without `Last-Event-ID` the first event is the job's current status."""
    stream = JobStream(client, store, job.id, settings.events_keepalive_seconds)
    if last_event_id is not None:
        chunks = stream.follow(last_event_id, wait_first=False)
    else:
        cursor = await newest_id(client, job.id)  # read before the store: no later event is missed
        row = await run_in_threadpool(store.get, job.id) or job
        chunks = stream.opening(JobEvent(cursor, "status", row_data(row)))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)
