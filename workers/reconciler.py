"""Nothing stays stuck. The store is the truth and the broker may forget: jobs the store holds as
queued or running that no broker message stands for (Redis restarted without its data, or the API
died between INSERT and send) are sent again (`Reconciler`). A worker may die holding a job: the
delivery it held goes back to its queue as soon as its heartbeat has expired (`WorkerWatch`).

Messages are found where kombu's Redis transport keeps them: one list per queue and priority
step (published at the left, taken from the right), and the `unacked` hash, delivery tag ->
[message, exchange, routing key], for delivered messages not yet acknowledged (acks are late, so
a running job's message stays there until it ends), with `unacked_index`, delivery tag -> the
Unix time of the delivery on the consuming worker's clock.
"""

import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import redis
from celery import Celery
from redis.client import Pipeline

from schemas.jobs import JobStatus
from workers import failures, heartbeat, sweeps
from workers.celery_app import QUEUES, send_job
from workers.claims import CLAIMS, Claim, claims
from workers.events import EventLog
from workers.store import JobRow, JobStore
from workers.store.models import utcnow

log = logging.getLogger(__name__)
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
LOCK = "ntkdyn:reconciler"


def queue_key(queue: str, priority: int = 0) -> str:
    """The list that holds a queue's messages of this priority (kombu's `_q_for_pri`)."""
    step = max(step for step in PRIORITY_STEPS if step <= min(max(priority, 0), PRIORITY_STEPS[-1]))
    return queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}"


def broker_task_ids(client: redis.Redis, queues: Iterable[str] = QUEUES) -> set[str]:
    """Task ids of every message waiting in `queues` or delivered and unacknowledged."""
    ids: set[str] = set()
    for queue in queues:
        for step in PRIORITY_STEPS:
            waiting = client.lrange(queue_key(queue, step), 0, -1)
            ids.update(json.loads(raw)["headers"]["id"] for raw in waiting)
    ids.update(json.loads(raw)[0]["headers"]["id"] for raw in client.hvals(UNACKED))
    return ids


def claimed_delivery(client: redis.Redis, job_id: str, claim: Claim) -> tuple[bytes, Any] | None:
    """The unacknowledged delivery of `job_id` that `claim` stands for, as (tag, [message,
    exchange, routing key]): the newest one delivered no later than the claim was made. A later
    delivery of the same message (the broker redelivered it after its visibility timeout, and
    the new worker has not claimed it yet) is never taken for it."""
    held = {tag: json.loads(raw) for tag, raw in client.hgetall(UNACKED).items()}
    stamped = [
        (score, tag)
        for tag, entry in held.items()
        if entry[0]["headers"]["id"] == job_id
        and (score := client.zscore(UNACKED_INDEX, tag)) is not None
        and score <= claim.at
    ]
    if not stamped:
        return None
    tag = max(stamped)[1]
    return tag, held[tag]


def requeued(entry: Any) -> tuple[str, str]:
    """The queue list and the message to put back for an unacked entry, marked redelivered as
    kombu's `_do_restore_message` marks it (our exchanges are direct, named as their queues)."""
    message, _exchange, routing_key = entry
    message["headers"]["redelivered"] = True
    message["properties"]["delivery_info"]["redelivered"] = True
    try:
        priority = int(message["properties"]["priority"])
    except (KeyError, TypeError, ValueError):
        priority = 0
    return queue_key(routing_key, priority), json.dumps(message)


def take_back(client: redis.Redis, job_id: str, claim: Claim) -> bool:
    """If `claim` still holds `job_id`, drop it and put the delivery it stands for back at the
    front of its queue, all in one transaction (WATCH on the claims and both unacked keys, so a
    new claim, an ack or a restore by a worker in between makes it start over). True when a
    message went back; False when the claim has changed (nothing is done) or the delivery is no
    longer unacknowledged (only the claim is dropped)."""

    def transaction(pipe: Pipeline) -> bool:
        if pipe.hget(CLAIMS, job_id) != claim.raw:
            return False
        delivery = claimed_delivery(pipe, job_id, claim)
        pipe.multi()
        pipe.hdel(CLAIMS, job_id)
        if delivery is None:
            return False
        tag, entry = delivery
        pipe.zrem(UNACKED_INDEX, tag).hdel(UNACKED, tag).rpush(*requeued(entry))
        return True

    return client.transaction(transaction, CLAIMS, UNACKED, UNACKED_INDEX, value_from_callable=True)


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
            if self.store.finish(sweep.id, JobStatus.failed, error=f"{failures.SWEEP}: {error}"):
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


class WorkerWatch:
    """Sends again the jobs of dead workers: a claim whose worker has no heartbeat gets its
    delivery put back in its queue (`take_back`), to be run by the next free worker as the next
    attempt (or, for a job that ended before its worker died, to be acknowledged by a task that
    finds nothing to do). Run every heartbeat period, a job goes back within one period of its
    worker's heartbeat expiring, long before the broker's visibility timeout would restore it.

    Absence of a heartbeat means death only while Redis serves the heartbeats: after Redis has
    restarted (its uptime says so), or a pass failed, or passes were more than two periods apart
    (by Redis's clock, the one heartbeats expire by), live workers may have missed beats. The
    watch then judges no one until Redis has answered it steadily for a heartbeat's lifetime, in
    which every live worker has beaten again. The claims are read before the heartbeats, and a
    worker beats before it takes its first job, so a claim read is never newer than the
    heartbeats read after it. Takes no lock: `take_back` is atomic and does nothing twice."""

    def __init__(self, client: redis.Redis, every: float) -> None:
        self.client, self.every, self.ttl = client, every, heartbeat.ttl(every)
        self.steady_since = 0.0
        self.last_pass: float | None = None

    def run_pass(self) -> list[str]:
        """One pass; returns the ids of the jobs put back in their queues."""
        try:
            now, started, held = self.read_claims()
            live = {worker["name"] for worker in heartbeat.live_workers(self.client)}
        except redis.RedisError:
            self.last_pass = None
            raise
        if self.steady_for(now, started) < self.ttl:
            return []
        orphans = {job_id: claim for job_id, claim in held.items() if claim.worker not in live}
        return [job_id for job_id, claim in orphans.items() if self.resend(job_id, claim)]

    def read_claims(self) -> tuple[float, float, dict[str, Claim]]:
        """Redis's clock now, when it started by that clock, and the claims."""
        with self.client.pipeline(transaction=False) as pipeline:
            pipeline.time().info("server")
            (seconds, microseconds), info = pipeline.execute()
        now = seconds + microseconds / 1e6
        return now, now - info["uptime_in_seconds"], claims(self.client)

    def steady_for(self, now: float, started: float) -> float:
        """Seconds for which Redis has run and answered every pass within two periods."""
        if self.last_pass is None or now - self.last_pass > 2 * self.every:
            self.steady_since = now
        self.last_pass = now
        return now - max(self.steady_since, started)

    def resend(self, job_id: str, claim: Claim) -> bool:
        """Put back the delivery a dead worker held; True when it went back."""
        sent = take_back(self.client, job_id, claim)
        if sent:
            log.warning("job %s: worker %s stopped beating; sending the job again", job_id, claim.worker)
        return sent
