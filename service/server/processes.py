"""Child processes of the launcher: started in their own session (a terminal's Ctrl-C reaches
only the launcher, which stops them in order) and told to die with their parent."""

import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
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
