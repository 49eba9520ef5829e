"""`ntkdyn run`: the whole stack in one command. Embedded Redis and SQLite unless REDIS_URL and
DATABASE_URL point elsewhere, one supervised Celery worker subprocess, and uvicorn."""

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import uvicorn

from workers.store import make_engine, migrate

from .app import create_app
from .embedded import supervised_redis
from .private import PRIVATE_UMASK, tighten
from .processes import spawn, stop
from .settings import ServerSettings

log = logging.getLogger(__name__)
WORKER_GRACE_SECONDS = 10.0
RESPAWN_BACKOFF_MAX = 30.0


class SupervisedWorker:
    """A `ntkdyn worker` subprocess, restarted if it dies while the stack runs."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self.process = self._spawn()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _spawn(self) -> subprocess.Popen:
        argv = [sys.executable, "-m", "service.cli", "worker"]
        return spawn(argv, env=self.settings.environment(), log_file=self.settings.data_dir / "worker.log")

    def _watch(self) -> None:
        """Restart a dead worker, waiting 1, 2, 4 ... 30 s while it keeps dying young."""
        delay, started = 1.0, time.monotonic()
        while not self.stopping.wait(delay):
            if self.process.poll() is None:
                continue
            young = time.monotonic() - started < 60
            delay = min(2 * delay, RESPAWN_BACKOFF_MAX) if young else 1.0
            log.warning("worker exited with %s; starting a new one", self.process.returncode)
            self.process, started = self._spawn(), time.monotonic()

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.join()
        stop(self.process, grace=WORKER_GRACE_SECONDS)


def serve(settings: ServerSettings, announce: Callable[[str], None]) -> None:
    """Run uvicorn until SIGINT/SIGTERM; announce the URL once it listens."""
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    def tell_when_started() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            host, port = server.servers[0].sockets[0].getsockname()[:2]
            announce(f"http://{host}:{port}")

    threading.Thread(target=tell_when_started, daemon=True).start()
    server.run()


def run_stack(settings: ServerSettings, announce: Callable[[str], None]) -> None:
    """Start what the settings do not point elsewhere, serve, and stop it all on the way out.
    Everything it and its children write is owner-only (umask 077, the data folder tightened)."""
    os.umask(PRIVATE_UMASK)
    tighten(settings.data_dir)
    embedded = supervised_redis(settings.data_dir) if settings.embedded_redis else None
    worker: SupervisedWorker | None = None
    try:
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        engine.dispose()
        worker = SupervisedWorker(settings)
        serve(settings, announce)
    finally:
        if worker is not None:
            worker.stop()
        if embedded is not None:
            embedded.stop()
