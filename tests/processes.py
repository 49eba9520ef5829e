"""Looking at process trees through /proc, and at the logs the processes write, for the tests
that start and kill processes."""

import re
import subprocess
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid`, with its command line."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: dict[int, str] = {}
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        stack.extend(children.get(child, []))
    return found


def tail(log: Path, lines: int = 30, skip: str | None = None) -> str:
    """The last `lines` lines of a log file but those matching the regular expression `skip` (an
    HTTP server's access log, say), under a header naming it: a failure's evidence."""
    text = log.read_text(errors="replace") if log.exists() else "(no log written)"
    kept = [line for line in text.splitlines() if skip is None or not re.search(skip, line)]
    return f"--- last {lines} lines of {log} ---\n" + "\n".join(kept[-lines:])


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen, timeout: float = 60) -> re.Match:
    """The first match of `pattern` in the log that `process` writes, once it appears; fails with
    the log's tail if the process exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while (found := re.search(pattern, log.read_text(errors="replace") if log.exists() else "")) is None:
        assert process.poll() is None, f"exited with {process.returncode}\n{tail(log)}"
        assert time.monotonic() < deadline, f"no line matching {pattern!r} in {timeout:g} s\n{tail(log)}"
        time.sleep(0.1)
    return found
