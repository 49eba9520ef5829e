"""Worker liveness in Redis: each worker refreshes a key with a time-to-live and keeps its name in
a registry set; /readyz, the dispatcher and the API's worker watch read the registry's keys.

The registry makes a read cost O(workers): scanning the keyspace for the worker keys cost
O(keys), and every job keeps an event stream for a day, so a busy lab's every dispatch pass
walked thousands of keys. A name whose key has expired leaves the registry at the next read
(only if the key is still missing then: a worker that beats again meanwhile stays)."""

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)
PREFIX = "ntkdyn:worker:"
REGISTRY = "ntkdyn:workers"
"""The set of the names of the workers that have beaten and not yet been found expired."""
PRUNE = """
for i, name in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('SREM', KEYS[#KEYS], name) end
end
"""
"""Drop the names ARGV whose keys KEYS[i] are missing from the registry KEYS[#KEYS], atomically."""


def ttl(every: float) -> int:
    """Seconds a heartbeat lives: three beats of `every` seconds (at least 1)."""
    return max(1, round(3 * every))


Probe = Callable[[], dict[str, Any]]
"""Extra fields read afresh for each beat (a GPU worker's device memory)."""


def beat(
    client: redis.Redis, name: str, queues: list[str], concurrency: int, every: float, probe: Probe | None
) -> None:
    """Refresh `ntkdyn:worker:<name>` every `every` seconds (expires after 3 missed beats): its
    queues, how many jobs it runs at once (the dispatcher's capacity), the beat's Unix time and
    what `probe` reads."""
    while True:
        fields = {"name": name, "queues": queues, "concurrency": concurrency, "at": time.time()}
        try:
            publish(client, fields | (probe() if probe else {}), ttl(every))
        except redis.RedisError as error:
            log.warning("heartbeat failed: %s", error)
        time.sleep(every)


def publish(client: redis.Redis, fields: dict[str, Any], lifetime: int) -> None:
    """One beat: the worker's key, `fields` as JSON living `lifetime` seconds, and its name in
    the registry, in one transaction."""
    with client.pipeline() as pipe:
        pipe.set(PREFIX + fields["name"], json.dumps(fields), ex=lifetime)
        pipe.sadd(REGISTRY, fields["name"])
        pipe.execute()


def start_heartbeat(
    client: redis.Redis,
    name: str,
    queues: list[str],
    concurrency: int,
    every: float,
    probe: Probe | None = None,
) -> None:
    args = (client, name, queues, concurrency, every, probe)
    threading.Thread(target=beat, args=args, daemon=True).start()


def live_workers(client: redis.Redis) -> list[dict]:
    """The workers whose heartbeat has not expired, by name; expired names leave the registry."""
    names = sorted(name.decode() if isinstance(name, bytes) else name for name in client.smembers(REGISTRY))
    if not names:
        return []
    keys = [PREFIX + name for name in names]
    found = client.mget(keys)
    gone = [(key, name) for key, name, raw in zip(keys, names, found, strict=True) if raw is None]
    if gone:
        client.eval(PRUNE, len(gone) + 1, *[key for key, _ in gone], REGISTRY, *[name for _, name in gone])
    return [json.loads(raw) for raw in found if raw]
