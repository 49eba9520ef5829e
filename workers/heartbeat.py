"""Worker liveness in Redis: each worker refreshes a key with a time-to-live; /readyz and the API's
worker watch read them."""

import json
import logging
import threading
import time

import redis

log = logging.getLogger(__name__)
PREFIX = "ntkdyn:worker:"


def ttl(every: float) -> int:
    """Seconds a heartbeat lives: three beats of `every` seconds (at least 1)."""
    return max(1, round(3 * every))


def beat(client: redis.Redis, name: str, queues: list[str], concurrency: int, every: float) -> None:
    """Refresh `ntkdyn:worker:<name>` every `every` seconds (expires after 3 missed beats): its
    queues, how many jobs it runs at once (the dispatcher's capacity) and the beat's Unix time."""
    while True:
        payload = json.dumps({"name": name, "queues": queues, "concurrency": concurrency, "at": time.time()})
        try:
            client.set(PREFIX + name, payload, ex=ttl(every))
        except redis.RedisError as error:
            log.warning("heartbeat failed: %s", error)
        time.sleep(every)


def start_heartbeat(
    client: redis.Redis, name: str, queues: list[str], concurrency: int, every: float
) -> None:
    threading.Thread(target=beat, args=(client, name, queues, concurrency, every), daemon=True).start()


def live_workers(client: redis.Redis) -> list[dict]:
    """The workers whose heartbeat has not expired."""
    keys = list(client.scan_iter(match=PREFIX + "*", count=100))
    return [json.loads(raw) for raw in client.mget(keys) if raw] if keys else []
