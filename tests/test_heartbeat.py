"""Worker heartbeats on a real redis-server: a read finds the live workers through the registry,
never by walking the keyspace (which holds an event stream per job), and forgets expired ones."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.server.embedded import EmbeddedRedis
from workers.heartbeat import PREFIX, REGISTRY, live_workers, publish


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    server = EmbeddedRedis(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def beat(client: redis.Redis, name: str, lifetime: int = 60) -> None:
    publish(client, {"name": name, "queues": ["cpu"], "concurrency": 2}, lifetime)


def scans(client: redis.Redis) -> int:
    """SCAN and KEYS commands the server has run."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("scan", "keys"))


def test_live_workers_come_from_the_registry_not_the_keyspace(client: redis.Redis) -> None:
    with client.pipeline() as pipe:  # a busy lab: an event stream per recent job
        for job in range(5000):
            pipe.xadd(f"ntkdyn:events:{job}", {"status": "queued"})
        pipe.execute()
    beat(client, "b@host")
    beat(client, "a@host")
    before = scans(client)
    assert [worker["name"] for worker in live_workers(client)] == ["a@host", "b@host"]
    assert live_workers(client)[0] == {"name": "a@host", "queues": ["cpu"], "concurrency": 2}
    assert scans(client) == before


def test_an_expired_worker_leaves_and_comes_back_when_it_beats_again(client: redis.Redis) -> None:
    beat(client, "a@host")
    beat(client, "gone@host", lifetime=1)
    client.delete(PREFIX + "gone@host")  # what its expiry does
    assert [worker["name"] for worker in live_workers(client)] == ["a@host"]
    assert client.smembers(REGISTRY) == {b"a@host"}
    beat(client, "gone@host")
    assert [worker["name"] for worker in live_workers(client)] == ["a@host", "gone@host"]
    assert client.ttl(PREFIX + "gone@host") == 60
