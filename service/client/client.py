"""Python client of the ntkdyn API: `Client`, and `AsyncClient` for asyncio.

    with Client("http://127.0.0.1:8000") as client:
        job = client.submit({"kind": "kernel", "dataset": {"name": "sphere", "n": 64, "d": 8}})
        job.wait(timeout=600, on_progress=lambda event: print(event.progress, event.message))
        result = job.result()

Both clients share one sans-I/O core: requests are built, answers decoded (into `JobView`s or an
`ApiError` carrying the server's `detail`), retries scheduled (`service.client.retry`), and the
job's Server-Sent Events parsed and resumed (`service.client.events`) by the same code; each
client only sends, sleeps and reads lines. Connection errors and 503s are tried again with exponential backoff.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing, closing
from typing import Any

import httpx
from pydantic import BaseModel

from schemas import JobStatus, JobView
from schemas.access import (
    AuditPage,
    LimitsRequest,
    Role,
    TokenCreated,
    TokenRequest,
    TokenView,
    UserSummary,
    UserView,
)
from schemas.jobs import Visibility

from . import notebook
from .credentials import default_token
from .events import Event, Follow
from .retry import DEFAULT_RETRY, Attempts, Retry

DEFAULT_URL = "http://127.0.0.1:8000"
PAGE_MAX = 200
Spec = Mapping[str, Any] | BaseModel


class Pages:
    """Paging through /v1/jobs up to `limit` jobs."""

    def __init__(self, status: str | None, kind: str | None, limit: int) -> None:
        self.filters = {key: value for key, value in (("status", status), ("kind", kind)) if value}
        self.limit = limit
        self.views: list[JobView] = []
        self.cursor: str | None = None
        self.done = limit <= 0

    def params(self) -> dict[str, Any]:
        """Query of the next page."""
        size = min(self.limit - len(self.views), PAGE_MAX)
        return {**self.filters, "limit": size, **({"cursor": self.cursor} if self.cursor else {})}

    def add(self, page: dict[str, Any]) -> None:
        self.views.extend(JobView.model_validate(item) for item in page["items"])
        self.cursor = page["next_cursor"]
        self.done = self.cursor is None or len(self.views) >= self.limit


def request_body(spec: Spec, reuse: bool, visibility: Visibility) -> dict[str, Any]:
    """The POST /v1/jobs body of a spec (a mapping or a schemas model)."""
    document = spec.model_dump(mode="json") if isinstance(spec, BaseModel) else dict(spec)
    return {"spec": document, "reuse": reuse, "visibility": visibility}


class ClientBase:
    """What both clients hold: the service's address and token (as an httpx client of the
    `http_class`) and the retry policy. Without a token: NTKDYN_TOKEN, or the admin token in the
    local data folder (`credentials.default_token`)."""

    http_class: type[httpx.Client] | type[httpx.AsyncClient]

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry: Retry = DEFAULT_RETRY,
    ) -> None:
        headers = {"User-Agent": "ntkdyn-client"}
        token = token or default_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.retry = retry
        self.http = self.http_class(base_url=url.rstrip("/"), headers=headers, timeout=timeout)


def result_file(
    http: httpx.Client | httpx.AsyncClient, job_id: str, shape: str, table: str | None
) -> httpx.Request:
    """The request for a result file."""
    query = {"format": shape} | ({} if table is None else {"table": table})
    return http.build_request("GET", f"/v1/jobs/{job_id}/result", params=query)


class JobHandle:
    """What every job handle knows: its client and the job's last view."""

    def __init__(self, client: ClientBase, view: JobView) -> None:
        self.client, self.view = client, view

    @property
    def id(self) -> str:
        return self.view.id

    @property
    def status(self) -> JobStatus:
        return self.view.status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, {self.status.value})"


class Job(JobHandle):
    """A submitted job, seen through a `Client`."""

    client: "Client"

    def refresh(self) -> JobView:
        """The job as it is now."""
        self.view = self.client.view(self.id)
        return self.view

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Its events until it ends (see `Client.events`)."""
        return self.client.events(self.id, timeout)

    def wait(
        self, timeout: float | None = None, on_progress: Callable[[Event], None] | None = None
    ) -> JobView:
        """Follow the job until it ends, calling `on_progress` with every event; the final view.
        Raises WaitTimeout after about `timeout` seconds."""
        for event in self.events(timeout):
            if on_progress is not None:
                on_progress(event)
        return self.refresh()

    def result(self, wait: float = 0) -> dict[str, Any]:
        """The result document, waiting up to `wait` seconds (at most 60) for the job to end;
        ApiError 409 unless the job succeeded."""
        return self.client.call("GET", f"/v1/jobs/{self.id}/result", params={"wait": wait})

    def download(self, shape: str, table: str | None = None) -> bytes:
        """The result as a file: `csv` or `parquet` (one table: `table`, or the kind's first) or
        `npz` (every table's columns as `TABLE.COLUMN`, and the kind's other arrays)."""
        return self.client.send(result_file(self.client.http, self.id, shape, table)).content

    def to_frame(self, table: str | None = None) -> Any:
        """A result table as a pandas DataFrame (tidy: one row per observation), e.g. a train
        job's `trajectories` (the default), `runs` or `predicted` (needs `ntkdyn[notebook]`)."""
        return notebook.frame(self.download("parquet", table))

    def arrays(self) -> dict[str, Any]:
        """Every column of the result's tables (`trajectories.train_loss`, ...) and its other
        arrays (a kernel job's `matrix`, n x n) as NumPy arrays (needs `ntkdyn[notebook]`)."""
        return notebook.arrays(self.download("npz"))

    def cancel(self) -> JobView:
        """Cancel the job: a queued one ends at once, a running one at its next progress check."""
        self.view = JobView.model_validate(self.client.call("DELETE", f"/v1/jobs/{self.id}"))
        return self.view


class Client(ClientBase):
    """Synchronous client of the ntkdyn API at `url`, with an optional bearer `token`."""

    http_class = httpx.Client
    http: httpx.Client

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        """Send `request`, again after a connection error or a 503 as the retry policy allows;
        the successful response, or ApiError / Unreachable."""
        attempts = Attempts(self.retry, request)
        for delay in attempts:
            time.sleep(delay)
            with attempts.trying():
                response = self.http.send(request, stream=stream)
                if response.is_error:  # read the detail (and free the connection) of a stream
                    response.read()
                attempts.answer(response)
        return attempts.response()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of one request."""
        return self.send(self.http.build_request(method, path, **kwargs)).json()

    def view(self, job_id: str) -> JobView:
        return JobView.model_validate(self.call("GET", f"/v1/jobs/{job_id}"))

    def submit(self, spec: Spec, reuse: bool = True, visibility: Visibility = "private") -> Job:
        """Submit an experiment spec; with `reuse`, an identical succeeded, queued or running job
        may answer; `visibility` lab shares it read-only with every user. A bad spec raises
        ApiError 422 whose detail names each bad field."""
        body = request_body(spec, reuse, visibility)
        return Job(self, JobView.model_validate(self.call("POST", "/v1/jobs", json=body)))

    def me(self) -> UserView:
        """Who this client's token acts as."""
        return UserView.model_validate(self.call("GET", "/v1/me"))

    def create_token(self, user: str, role: Role | None = None, label: str = "") -> TokenCreated:
        """(Admins) a new token for `user`; its secret is in this answer only."""
        body = TokenRequest(user=user, role=role, label=label).model_dump()
        return TokenCreated.model_validate(self.call("POST", "/v1/tokens", json=body))

    def tokens(self) -> list[TokenView]:
        """(Admins) every token, without its secret."""
        return [TokenView.model_validate(item) for item in self.call("GET", "/v1/tokens")]

    def revoke_token(self, token_id: str) -> TokenView:
        """(Admins) revoke a token."""
        return TokenView.model_validate(self.call("DELETE", f"/v1/tokens/{token_id}"))

    def users(self) -> list[UserSummary]:
        """(Admins) every user with their quotas and usage."""
        return [UserSummary.model_validate(item) for item in self.call("GET", "/v1/users")]

    def set_limits(
        self, user: str, max_active_jobs: int | None = None, max_daily_flops: float | None = None
    ) -> UserSummary:
        """(Admins) a user's quotas; None: the service's default."""
        body = LimitsRequest(max_active_jobs=max_active_jobs, max_daily_flops=max_daily_flops).model_dump()
        return UserSummary.model_validate(self.call("PUT", f"/v1/users/{user}/limits", json=body))

    def audit(self, actor: str | None = None, action: str | None = None, limit: int = 100) -> AuditPage:
        """(Admins) the newest audit entries, filtered by actor and action."""
        params = {key: value for key, value in (("actor", actor), ("action", action)) if value}
        return AuditPage.model_validate(self.call("GET", "/v1/audit", params={**params, "limit": limit}))

    def readiness(self) -> dict[str, Any]:
        """What /readyz says, ready or not (no retry on its 503): store, broker, live workers."""
        return self.http.get("/readyz").json()

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (ApiError 404 if there is none)."""
        return Job(self, self.view(job_id))

    def jobs(self, status: str | None = None, kind: str | None = None, limit: int = 50) -> list[Job]:
        """Up to `limit` jobs, newest first, with this status and kind."""
        pages = Pages(status, kind, limit)
        while not pages.done:
            pages.add(self.call("GET", "/v1/jobs", params=pages.params()))
        return [Job(self, view) for view in pages.views]

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[Event]:
        """The job's events (its current status first) until the one that ends it; a dropped
        stream is resumed after the last event seen. Raises WaitTimeout after about `timeout`."""
        follow = Follow(job_id, timeout, self.retry)
        while follow.active:
            with follow.connection(), closing(self.send(follow.request(self.http), stream=True)) as response:
                for line in response.iter_lines():
                    yield from follow.feed(line)


class AsyncJob(JobHandle):
    """A submitted job, seen through an `AsyncClient`; methods as `Job`'s."""

    client: "AsyncClient"

    async def refresh(self) -> JobView:
        self.view = await self.client.view(self.id)
        return self.view

    def events(self, timeout: float | None = None) -> AsyncIterator[Event]:
        return self.client.events(self.id, timeout)

    async def wait(
        self, timeout: float | None = None, on_progress: Callable[[Event], None] | None = None
    ) -> JobView:
        async for event in self.events(timeout):
            if on_progress is not None:
                on_progress(event)
        return await self.refresh()

    async def result(self, wait: float = 0) -> dict[str, Any]:
        return await self.client.call("GET", f"/v1/jobs/{self.id}/result", params={"wait": wait})

    async def download(self, shape: str, table: str | None = None) -> bytes:
        return (await self.client.send(result_file(self.client.http, self.id, shape, table))).content

    async def to_frame(self, table: str | None = None) -> Any:
        return notebook.frame(await self.download("parquet", table))

    async def arrays(self) -> dict[str, Any]:
        return notebook.arrays(await self.download("npz"))

    async def cancel(self) -> JobView:
        self.view = JobView.model_validate(await self.client.call("DELETE", f"/v1/jobs/{self.id}"))
        return self.view


class AsyncClient(ClientBase):
    """Asynchronous client of the ntkdyn API; methods as `Client`'s, awaited."""

    http_class = httpx.AsyncClient
    http: httpx.AsyncClient

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        attempts = Attempts(self.retry, request)
        for delay in attempts:
            await asyncio.sleep(delay)
            with attempts.trying():
                response = await self.http.send(request, stream=stream)
                if response.is_error:
                    await response.aread()
                attempts.answer(response)
        return attempts.response()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.send(self.http.build_request(method, path, **kwargs))).json()

    async def view(self, job_id: str) -> JobView:
        return JobView.model_validate(await self.call("GET", f"/v1/jobs/{job_id}"))

    async def submit(self, spec: Spec, reuse: bool = True, visibility: Visibility = "private") -> AsyncJob:
        body = request_body(spec, reuse, visibility)
        return AsyncJob(self, JobView.model_validate(await self.call("POST", "/v1/jobs", json=body)))

    async def job(self, job_id: str) -> AsyncJob:
        return AsyncJob(self, await self.view(job_id))

    async def jobs(
        self, status: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[AsyncJob]:
        pages = Pages(status, kind, limit)
        while not pages.done:
            pages.add(await self.call("GET", "/v1/jobs", params=pages.params()))
        return [AsyncJob(self, view) for view in pages.views]

    async def events(self, job_id: str, timeout: float | None = None) -> AsyncIterator[Event]:
        follow = Follow(job_id, timeout, self.retry)
        while follow.active:
            with follow.connection():
                async with aclosing(await self.send(follow.request(self.http), stream=True)) as response:
                    async for line in response.aiter_lines():
                        for event in follow.feed(line):
                            yield event
