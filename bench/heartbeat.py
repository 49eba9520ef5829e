"""Finding the live workers, as every dispatch pass, /readyz and /metrics do, against the obvious
alternative measured in the same run: the registry (SMEMBERS, then MGET of its names' keys)
against scanning the keyspace for the worker keys (SCAN MATCH, then MGET), on an embedded
redis-server holding one worker and N job event streams (a job's stream lives a day).

    python bench/heartbeat.py
"""

import json
import tempfile
from pathlib import Path

import redis
from timing import median_ms

from service.server.embedded import EmbeddedRedis
from workers.heartbeat import PREFIX, live_workers, publish

STREAMS = (100, 1_000, 10_000, 50_000)
CALLS = 50


def scanned(client: redis.Redis) -> list[dict]:
    """The keyspace walk: every key is visited, SCAN's COUNT at a time."""
    keys = list(client.scan_iter(match=PREFIX + "*", count=100))
    return [json.loads(raw) for raw in client.mget(keys) if raw] if keys else []


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            publish(client, {"name": "w@host", "queues": ["cpu"], "concurrency": 2}, lifetime=600)
            print(f"live workers, median of {CALLS} reads (ms)")
            print("| event streams | registry | keyspace scan | ratio |\n|---|---|---|---|")
            for count in STREAMS:
                with client.pipeline(transaction=False) as pipe:
                    for job in range(client.dbsize(), count):
                        pipe.xadd(f"ntkdyn:events:{job}", {"status": "queued"})
                    pipe.execute()
                assert live_workers(client) == scanned(client)
                ours, walk = (
                    median_ms(lambda: live_workers(client), CALLS),
                    median_ms(lambda: scanned(client), CALLS),
                )
                print(f"| {count} | {ours:.3f} | {walk:.3f} | {walk / ours:.1f}x |")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
