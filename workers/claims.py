"""Which worker runs which job: the hash `ntkdyn:claims` in Redis, from job id to a claim.

A task claims its job before the store marks it running and releases the claim when it ends, so
a claim stands for one delivery in a worker's hands. The API's worker watch
(`workers.reconciler.WorkerWatch`) reads the claims to find the jobs held by workers whose
heartbeat has expired. A claim is the JSON of {worker, at}: the worker's name and the Unix time
of the claim on the worker's clock, the clock that also stamped the delivery in the broker.

Claims never fail a job: a claim that Redis refuses leaves the job to the broker's visibility
timeout. A claim left behind (Redis refused its release, or the pool killed the task's process)
is dropped by the watch once its worker is gone.
"""

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)
CLAIMS = "ntkdyn:claims"
RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
"""Delete a job's claim only if it is still the one given: a later delivery's claim stays."""


@dataclass(frozen=True)
class Claim:
    """A worker's claim on a job; `raw` is the stored value, compared before it is replaced."""

    worker: str
    at: float
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> "Claim":
        fields = json.loads(raw)
        return cls(worker=fields["worker"], at=fields["at"], raw=raw)


def claims(client: redis.Redis) -> dict[str, Claim]:
    """Every claim, by job id."""
    return {job_id.decode(): Claim.parse(raw) for job_id, raw in client.hgetall(CLAIMS).items()}


@contextmanager
def claimed(client: redis.Redis, job_id: str, worker: str) -> Iterator[None]:
    """Hold a claim on `job_id` for `worker` while the block runs (replacing any older claim)."""
    raw = json.dumps({"worker": worker, "at": time.time()}).encode()
    try:
        client.hset(CLAIMS, job_id, raw)
    except redis.RedisError as error:
        log.warning("job %s: not claimed, only the visibility timeout covers it: %s", job_id, error)
    try:
        yield
    finally:
        try:
            client.register_script(RELEASE)(keys=[CLAIMS], args=[job_id, raw])
        except redis.RedisError as error:
            log.warning("job %s: claim not released: %s", job_id, error)
