"""Talking to the service: the errors of a request, and the policy that tries it again.

A request is tried again, with exponential backoff, after a connection error or a 503 (the
service's store or broker unreachable), and after no other status: a 4xx is the caller's to fix.
A GET is also tried again after any other transport error (it changes nothing); other methods
are not, lest a job be submitted twice.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx


class ClientError(Exception):
    """Base of the errors of this client."""


class ApiError(ClientError):
    """The service answered with an error status. `detail` is the answer's `detail`: for a 422,
    the list of problems, each with the field's path (`loc`) and the reason (`msg`)."""

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code, self.detail = status_code, detail
        super().__init__(f"{status_code}: {describe(detail)}")

    @classmethod
    def of(cls, response: httpx.Response) -> "ApiError":
        try:
            detail = response.json().get("detail", response.text)
        except (json.JSONDecodeError, AttributeError):
            detail = response.text or response.reason_phrase
        return cls(response.status_code, detail)


class Unreachable(ClientError):
    """No answer from the service, after every retry the policy allows."""


class WaitTimeout(ClientError, TimeoutError):
    """The job did not end in the time given."""


def describe(detail: Any) -> str:
    """A `detail` in one line: `dataset.n: Input should be ...; ...` for field problems."""
    if isinstance(detail, list):
        return "; ".join(_problem(item) for item in detail)
    if isinstance(detail, dict):
        return ": ".join(str(part) for part in (detail.get("msg", detail), detail.get("error")) if part)
    return str(detail)


def _problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = [str(part) for part in item.get("loc", [])]
    where = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "body"
    return f"{where}: {item.get('msg', '')}"


@dataclass(frozen=True)
class Retry:
    """How often a request is tried, and the waits between tries: `backoff`, twice that, ...
    at most `max_delay` seconds."""

    attempts: int = 5
    backoff: float = 0.5
    max_delay: float = 8.0

    def delays(self) -> Iterator[float]:
        """The wait before each try (none before the first)."""
        yield 0.0
        for attempt in range(self.attempts - 1):
            yield min(self.backoff * 2**attempt, self.max_delay)


DEFAULT_RETRY = Retry()


Outcome = httpx.Response | httpx.TransportError


class Attempts:
    """The tries of one request: iterating gives the wait before each next try, as long as the
    last outcome calls for one; `response()` is the answer, or raises."""

    def __init__(self, retry: Retry, request: httpx.Request) -> None:
        self.delays, self.request = retry.delays(), request
        self.outcome: Outcome | None = None

    def __iter__(self) -> Iterator[float]:
        for delay in self.delays:
            if self.outcome is not None and not self.retryable(self.outcome):
                return
            yield delay

    def retryable(self, outcome: Outcome) -> bool:
        """A 503, a connection never made, or any transport error of a GET (nothing changed)."""
        if isinstance(outcome, httpx.Response):
            return outcome.status_code == 503
        return isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout) or self.request.method == "GET"

    @contextmanager
    def trying(self) -> Iterator[None]:
        """Around one try: a transport error becomes its outcome."""
        try:
            yield
        except httpx.TransportError as error:
            self.outcome = error

    def answer(self, response: httpx.Response) -> None:
        self.outcome = response

    def response(self) -> httpx.Response:
        """The successful response of the last try; raises ApiError or Unreachable."""
        if isinstance(self.outcome, httpx.Response):
            if self.outcome.is_error:
                raise ApiError.of(self.outcome)
            return self.outcome
        raise Unreachable(f"no answer from {self.request.url}: {self.outcome}") from self.outcome
