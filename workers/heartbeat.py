"""Worker liveness in Redis: each worker refreshes a key with a time-to-live; /readyz and the API's
worker watch read them."""

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)
PREFIX = "ntkdyn:worker:"


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
        payload = json.dumps(fields | (probe() if probe else {}))
        try:
            client.set(PREFIX + name, payload, ex=ttl(every))
        except redis.RedisError as error:
            log.warning("heartbeat failed: %s", error)
        time.sleep(every)


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
    """The workers whose heartbeat has not expired."""
    keys = list(client.scan_iter(match=PREFIX + "*", count=100))
    return [json.loads(raw) for raw in client.mget(keys) if raw] if keys else []
