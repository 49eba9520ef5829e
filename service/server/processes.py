"""Child processes of the launcher: started in their own session (a terminal's Ctrl-C reaches
only the launcher, which stops them in order) and told to die with their parent."""

import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
YOUNG_SECONDS = 60.0
"""A child that exits sooner than this after its start is started again ever more slowly."""
BACKOFF_MAX = 30.0
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: no dlopen after a fork


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the launcher dies, even by SIGKILL (Linux)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], env: dict[str, str] | None = None, log_file: Path | None = None
) -> subprocess.Popen:
    output = open(log_file, "ab") if log_file else None  # noqa: SIM115 (the child owns it)
    try:
        return subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        if output:
            output.close()


def stop(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL it after `grace` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        log.warning("process %d did not stop in %.0f s; killing it", process.pid, grace)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


class Supervisor:
    """Keeps a child process running until `stop`: `launch` starts it (returning once it serves),
    and starts it again whenever it exits, after 1 s, doubled up to 30 s while it keeps exiting
    within a minute of its start. A launch that fails counts as an exit.

    Restarts happen in the watching thread, which lives until `stop`, so that the children it
    starts, which die with the thread that started them (PR_SET_PDEATHSIG), live as long."""

    def __init__(self, name: str, launch: Callable[[], subprocess.Popen], grace: float) -> None:
        self.name, self.launch, self.grace = name, launch, grace
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.process = launch()
        self.watcher = threading.Thread(target=self._watch, name=f"supervise {name}", daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        """Wait for the child to exit; launch it again after the pause, until `stop`."""
        pause = 0.5
        while True:
            code = self.process.wait()
            young = time.monotonic() - self.started < YOUNG_SECONDS
            pause = min(2 * pause, BACKOFF_MAX) if young else 1.0
            if not self.stopping.is_set():
                log.warning("%s exited with %s; starting it again in %.0f s", self.name, code, pause)
            if self.stopping.wait(pause):
                return
            with self.lock:
                if self.stopping.is_set():
                    return
                self._relaunch()

    def _relaunch(self) -> None:
        """Launch the child again; a launch that fails is logged and tried after the next pause."""
        self.started = time.monotonic()
        try:
            self.process = self.launch()
        except (OSError, RuntimeError) as error:  # the old, exited process stands until the next try
            log.error("%s did not start again: %s", self.name, error)
        else:
            log.warning("%s started again (pid %d)", self.name, self.process.pid)

    def stop(self) -> None:
        """Stop the child (SIGTERM, SIGKILL after the grace period) and start it no more."""
        self.stopping.set()
        with self.lock:
            stop(self.process, grace=self.grace)
        self.watcher.join()
