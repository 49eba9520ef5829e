"""The store is the truth, the broker may forget: jobs the store holds as queued or running that
no broker message stands for (Redis restarted without its data, or the API died between INSERT
and send) are sent again.

Messages are found where kombu's Redis transport keeps them: one list per queue and priority
step, and the `unacked` hash for delivered messages not yet acknowledged (acks are late, so a
running job's message stays there until it ends).
"""

import json
import logging
from collections.abc import Iterable
from datetime import timedelta

import redis
from celery import Celery

from schemas.jobs import JobStatus
from workers import sweeps
from workers.celery_app import QUEUES, send_job
from workers.events import EventLog
from workers.store import JobRow, JobStore
from workers.store.models import utcnow

log = logging.getLogger(__name__)
UNACKED = "unacked"
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
LOCK = "ntkdyn:reconciler"


def broker_task_ids(client: redis.Redis, queues: Iterable[str] = QUEUES) -> set[str]:
    """Task ids of every message waiting in `queues` or delivered and unacknowledged."""
    ids: set[str] = set()
    for queue in queues:
        for step in PRIORITY_STEPS:
            key = queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}"
            ids.update(json.loads(raw)["headers"]["id"] for raw in client.lrange(key, 0, -1))
    ids.update(json.loads(raw)[0]["headers"]["id"] for raw in client.hvals(UNACKED))
    return ids


class Reconciler:
    """Sends again the active jobs, untouched for `grace_seconds`, that the broker does not hold.

    A job must be missing on two passes in a row before it is sent: a message that a worker is
    taking (between its pop from the queue and its entry in `unacked`) is missing for a moment
    only. One pass runs at a time across API replicas (a Redis lock with a token). Each pass
    also brings every running sweep up to date with its children (in case the worker that ended
    a child died before telling its parent)."""

    def __init__(
        self, store: JobStore, client: redis.Redis, celery: Celery, grace_seconds: float, events: EventLog
    ) -> None:
        self.store, self.client, self.celery, self.grace = store, client, celery, grace_seconds
        self.events = events
        self.suspects: set[str] = set()

    def advance(self, sweep: JobRow) -> None:
        """Advance one sweep; a sweep whose table cannot be built (its stored spec no longer
        validates, say) fails with the reason instead of stopping every later pass."""
        try:
            sweeps.advance(self.store, sweep, self.events)
        except ValueError as error:
            log.exception("sweep %s cannot be advanced", sweep.id)
            if self.store.finish(sweep.id, JobStatus.failed, error=f"the sweep's table failed: {error}"):
                self.events.status(self.store.get(sweep.id))

    def run_pass(self) -> list[str]:
        """One pass; returns the ids sent again."""
        lock = self.client.lock(LOCK, timeout=60, blocking=False)
        if not lock.acquire():
            return []
        try:
            for sweep in self.store.running_sweeps():
                self.advance(sweep)
            cutoff = utcnow() - timedelta(seconds=self.grace)
            stale = self.store.active_before(cutoff, QUEUES)
            known = broker_task_ids(self.client) if stale else set()
            missing = {row.id: row for row in stale if row.id not in known}
            lost = [row for job_id, row in missing.items() if job_id in self.suspects]
            self.suspects = set(missing) - {row.id for row in lost}
            for row in lost:
                log.warning("job %s (%s) has no broker message; sending it again", row.id, row.status)
                send_job(self.celery, row.id, row.queue)
            return [row.id for row in lost]
        finally:
            lock.release()
