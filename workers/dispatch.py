"""Fair dispatch: a job waits in the store, queued, until a worker is free for it; then the user
with the fewest jobs in flight on its queue goes first (ties: whoever was served longest ago),
so that one user's two hundred queued jobs do not starve another's single one.

A queue holds at most as many dispatched, unfinished jobs as its live workers have processes
(their heartbeats say so): the broker's FIFO order then never decides who runs next. A pass runs
after every submit, after every job a worker ends, when a worker comes up, and on the API's
heartbeat period; one pass at a time (a Redis lock), each job dispatched once (a conditional
UPDATE). A job whose message the broker refused is put back to wait, for the next pass; one
marked but never sent (the process died between the two) is sent again by the reconciler.
"""

import logging
from collections import Counter

import redis
from celery import Celery

from workers.celery_app import QUEUES, send_job
from workers.heartbeat import live_workers
from workers.store import JobStore
from workers.store.jobs import fair_order

log = logging.getLogger(__name__)
LOCK = "ntkdyn:dispatch"
LOCK_POLL = 0.001
"""Seconds between tries of a held lock (redis-py's default, 0.1 s, added up to 100 ms to a
tiny job whenever a worker's pass after its last job overlapped the next submit's)."""


def capacity(client: redis.Redis) -> Counter[str]:
    """queue -> processes of the live workers that consume it."""
    slots: Counter[str] = Counter()
    for worker in live_workers(client):
        for queue in worker["queues"]:
            slots[queue] += int(worker.get("concurrency", 1))
    return slots


class Dispatcher:
    """Sends waiting jobs to their queues as workers free up, fairly across users."""

    def __init__(self, store: JobStore, client: redis.Redis, celery: Celery) -> None:
        self.store, self.client, self.celery = store, client, celery

    def run_pass(self, wait: float = 30.0) -> list[str]:
        """Dispatch what the free slots allow; the ids sent, in order. LockError if another
        pass holds the lock for `wait` seconds."""
        with self.client.lock(LOCK, timeout=30, sleep=LOCK_POLL, blocking_timeout=wait):
            slots = capacity(self.client)
            return [job_id for queue in QUEUES if slots[queue] for job_id in self.fill(queue, slots[queue])]

    def fill(self, queue: str, slots: int) -> list[str]:
        """Send the fair picks of `queue`'s waiting jobs to its free slots (a queue no worker
        serves is never read); the ids sent. The owners' last dispatch breaks ties only when
        more than one owner waits."""
        waiting, in_flight = self.store.queue_state(queue)
        free = slots - sum(in_flight.values())
        owners = {row.owner for row in waiting}
        if free <= 0 or not owners:
            return []
        last = self.store.last_served(owners) if len(owners) > 1 else {}
        sent = []
        for row in fair_order(waiting, in_flight, last, free):
            if self.store.mark_dispatched(row.id):
                try:
                    send_job(self.celery, row.id, queue)
                except Exception:  # not sent: it waits again (else in flight until the reconciler)
                    self.store.undo_dispatch(row.id)
                    raise
                sent.append(row.id)
        return sent
