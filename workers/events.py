"""Job events on Redis Streams: what the worker and the API append, and what `GET
/v1/jobs/{id}/events` reads.

One stream per job, `ntkdyn:events:{job_id}`, capped at about MAXLEN entries and expiring a TTL
after its last entry. An entry holds `kind` (`progress` or `status`) and `data`, the JSON of
{status, progress, message, error}; its id (`<ms>-<seq>`, increasing) is the SSE event id a client
resumes from. Events go out after the store has changed, so a reader that takes the store's
state first and then the entries after the newest id misses nothing.

Publishing never fails a job: a lost event only delays what a listener sees, because the API
reads the store again whenever a stream stays quiet. Imports redis and json only (no torch, no
Celery), so the API can use it.
"""

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from schemas.jobs import JobState, JobStatus
from workers.store.models import JobRow

log = logging.getLogger(__name__)
PREFIX = "ntkdyn:events:"
MAXLEN = 1000
ID_PATTERN = r"^\d{1,20}-\d{1,20}$"
"""A Redis stream entry id, as SSE clients send it back in Last-Event-ID."""
START = "0-0"
"""The id before every entry: reading after it reads the whole stream."""
MESSAGE_MAX = 500


def stream_key(job_id: str) -> str:
    return PREFIX + job_id


def event_data(status: str, progress: float, message: str, error: str | None = None) -> dict[str, Any]:
    """The payload of every event (`schemas.jobs.JobState`): where the job stands."""
    state = JobState(
        status=JobStatus(status),
        progress=min(max(progress, 0.0), 1.0),
        message=message[:MESSAGE_MAX],
        error=error,
    )
    return state.model_dump(mode="json")


def row_data(row: JobRow) -> dict[str, Any]:
    """The payload describing a stored job."""
    return event_data(row.status, row.progress, row.message, row.error)


@dataclass(frozen=True)
class JobEvent:
    """One event of a job: `kind` is `progress` or `status`; `id` orders and resumes them."""

    id: str
    kind: str
    data: dict[str, Any]

    @property
    def finished(self) -> bool:
        """True for the status event that ends the job (and its stream)."""
        return self.kind == "status" and JobStatus(self.data["status"]).finished


class EventLog:
    """Appends a job's events to its stream (worker and API side, synchronous Redis)."""

    def __init__(self, client: redis.Redis, ttl_seconds: float, maxlen: int = MAXLEN) -> None:
        self.client, self.ttl, self.maxlen = client, math.ceil(ttl_seconds), maxlen

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        """XADD the event (trimming the stream) and renew its expiry; a Redis error is logged."""
        key = stream_key(job_id)
        try:
            with self.client.pipeline() as pipeline:
                pipeline.xadd(key, {"kind": kind, "data": json.dumps(data)}, maxlen=self.maxlen)
                pipeline.expire(key, self.ttl)
                pipeline.execute()
        except redis.RedisError as error:
            log.warning("job %s: %s event not published: %s", job_id, kind, error)

    def progress(self, job_id: str, fraction: float, message: str) -> None:
        self.publish(job_id, "progress", event_data(JobStatus.running.value, fraction, message))

    def status(self, row: JobRow | None) -> None:
        """Publish the stored state of a job that changed status (nothing for a missing job)."""
        if row is not None:
            self.publish(row.id, "status", row_data(row))


def _decode(entry_id: str, fields: dict[str, str]) -> JobEvent:
    return JobEvent(id=entry_id, kind=fields["kind"], data=json.loads(fields["data"]))


async def newest_id(client: redis.asyncio.Redis, job_id: str) -> str:
    """The id of the job's newest event, or START when it has none."""
    entries = await client.xrevrange(stream_key(job_id), count=1)
    return entries[0][0] if entries else START


async def events_after(
    client: redis.asyncio.Redis, job_id: str, after: str, block_seconds: float | None
) -> list[JobEvent]:
    """The job's events after id `after`, oldest first; with `block_seconds`, waits that long
    for one to arrive when there is none. The client must decode responses."""
    block = None if block_seconds is None else max(1, round(1000 * block_seconds))
    answer = await client.xread({stream_key(job_id): after}, count=100, block=block)
    return [_decode(entry_id, fields) for _key, entries in answer for entry_id, fields in entries]
