"""Reading a job's event stream (`GET /v1/jobs/{id}/events`, Server-Sent Events) across
connections, without I/O: both clients feed it the lines they read."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from schemas import JobStatus
from schemas.jobs import JobState

from .retry import Retry, Unreachable, WaitTimeout

STALL_SECONDS = 60.0
"""An event stream silent this long (keep-alive comments included) is dropped and resumed."""


@dataclass(frozen=True)
class Event:
    """One event of a job: `progress` while it runs, or `status` when its status changes; the
    status event of a finished status is the last one."""

    id: str
    kind: str
    status: JobStatus
    progress: float
    message: str
    error: str | None

    @property
    def finished(self) -> bool:
        return self.kind == "status" and self.status.finished


class SSEDecoder:
    """Server-Sent Events from the lines of a stream: `field: value` lines, a blank line ends an
    event, a line starting with `:` is a comment (the keep-alives)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """The event this line completes, if any."""
        if not line:
            return self._dispatch()
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name in ("id", "event"):
            self.fields[name] = value
        return None

    def _dispatch(self) -> Event | None:
        fields, data = self.fields, "\n".join(self.data)
        self.fields, self.data = {}, []
        if not data:
            return None
        state = JobState.model_validate_json(data)
        return Event(
            id=fields.get("id", ""),
            kind=fields.get("event", "message"),
            status=state.status,
            progress=state.progress,
            message=state.message,
            error=state.error,
        )


class Follow:
    """Reading one job's event stream across connections: where to resume (Last-Event-ID), the
    deadline, and when to stop (after the event that finishes the job)."""

    def __init__(self, job_id: str, timeout: float | None, retry: Retry) -> None:
        self.path = f"/v1/jobs/{job_id}/events"
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.retry = retry
        self.last_id: str | None = None
        self.active, self.breaks = True, 0
        self.decoder = SSEDecoder()

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request of the next connection, resuming after the last event seen."""
        self.decoder = SSEDecoder()
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        read = STALL_SECONDS if self.deadline is None else min(STALL_SECONDS, self._remaining())
        timeout = httpx.Timeout(http.timeout.connect, read=max(read, 0.01))
        return http.build_request("GET", self.path, headers=headers, timeout=timeout)

    def feed(self, line: str) -> list[Event]:
        """The events this line completes (none or one); raises WaitTimeout past the deadline."""
        self._check_deadline()
        event = self.decoder.feed(line)
        if event is None:
            return []
        self.last_id, self.breaks, self.active = event.id, 0, not event.finished
        return [event]

    @contextmanager
    def connection(self) -> Iterator[None]:
        """Around one connection: a stream that breaks, or ends before the job, is resumed
        unless the deadline has passed or it broke too often in a row."""
        try:
            yield
        except httpx.TransportError as error:
            self._broke(error)
        else:
            if self.active:
                self._broke(None)

    def _broke(self, error: httpx.TransportError | None) -> None:
        self._check_deadline()
        self.breaks += 1
        if self.breaks >= self.retry.attempts:
            why = error if error is not None else "it ended before the job did"
            raise Unreachable(f"the event stream {self.path} broke {self.breaks} times: {why}") from error

    def _remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def _check_deadline(self) -> None:
        if self._remaining() <= 0:
            raise WaitTimeout(f"{self.path}: the job did not end in time")
