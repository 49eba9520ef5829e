"""Request dependencies as Annotated aliases; the validating ones return the loaded object.

Those that only read app state or check what another returned are `async def`: FastAPI runs a
plain `def` dependency in its thread pool, and each such hop cost ~0.7 ms of a request on a
2-core machine (bench/latency.py). Those that query the store stay `def`."""

import logging
from typing import Annotated

import redis
import redis.asyncio
from celery import Celery
from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from schemas import JobStatus
from workers.events import newest_id
from workers.store import JobRow, JobStore
from workers.store.access import AccessStore, User

from .settings import ServerSettings
from .waiting import WaitQuery, finished_within


async def _store(request: Request) -> JobStore:
    return request.app.state.store


async def _settings(request: Request) -> ServerSettings:
    return request.app.state.settings


async def _celery(request: Request) -> Celery:
    return request.app.state.celery


async def _redis(request: Request) -> redis.Redis:
    return request.app.state.redis


async def _async_redis(request: Request) -> redis.asyncio.Redis:
    return request.app.state.async_redis


async def _access(request: Request) -> AccessStore:
    return request.app.state.access


log = logging.getLogger(__name__)
BEARER = HTTPBearer(
    auto_error=False,
    description="an API token (`ntkdyn token create`; the first admin's is in the data folder)",
)
LOCAL = User("local", "admin")
"""Who acts when auth is off (loopback only, one user)."""


def _current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
) -> User:
    """The user of the request's bearer token: 401 without a valid, unrevoked one."""
    settings: ServerSettings = request.app.state.settings
    if not settings.auth:
        return LOCAL
    user = None if credentials is None else request.app.state.access.authenticate(credentials.credentials)
    if user is None:
        reason = "a bearer token is required" if credentials is None else "the token is not valid"
        raise HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})
    return user


StoreDep = Annotated[JobStore, Depends(_store)]
SettingsDep = Annotated[ServerSettings, Depends(_settings)]
CeleryDep = Annotated[Celery, Depends(_celery)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
AsyncRedisDep = Annotated[redis.asyncio.Redis, Depends(_async_redis)]
AccessDep = Annotated[AccessStore, Depends(_access)]
CurrentUser = Annotated[User, Depends(_current_user)]


async def _admin(user: CurrentUser) -> User:
    if not user.admin:
        raise HTTPException(status_code=403, detail="only an admin may do this")
    return user


AdminUser = Annotated[User, Depends(_admin)]


def _job(store: StoreDep, job_id: Annotated[str, Path(max_length=64)], _user: CurrentUser) -> JobRow:
    """The job (404 if none), looked up only for an authenticated user: without a token nobody
    learns which ids exist."""
    row = store.get(job_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no job with id {job_id!r}")
    return row


async def _readable(job: Annotated[JobRow, Depends(_job)], user: CurrentUser) -> JobRow:
    """A job the user may read: their own, a lab-visible one, or any for an admin (else 403)."""
    if not (user.admin or job.owner == user.name or job.visibility == "lab"):
        raise HTTPException(status_code=403, detail=f"job {job.id} belongs to another user")
    return job


async def _own(job: Annotated[JobRow, Depends(_job)], user: CurrentUser) -> JobRow:
    """A job the user may change (cancel): their own, or any for an admin (else 403)."""
    if not (user.admin or job.owner == user.name):
        raise HTTPException(status_code=403, detail=f"job {job.id} belongs to another user")
    return job


JobDep = Annotated[JobRow, Depends(_readable)]
OwnJobDep = Annotated[JobRow, Depends(_own)]


async def _cursor(
    job_id: Annotated[str, Path(max_length=64)],
    client: AsyncRedisDep,
    _user: CurrentUser,
    wait: WaitQuery = 0,
) -> str | None:
    """With `wait`, the id of the job's newest event, read after the token and before the job
    itself (FastAPI solves a route's dependencies in order), so that the wait misses no event
    after the job's read; None without a wait, or while Redis is unreachable (the wait then
    polls the store)."""
    if wait <= 0:
        return None
    try:
        return await newest_id(client, job_id)
    except RedisError as error:
        log.warning("waiting on job %s without its events: %s", job_id, error)
        return None


async def _waited(
    cursor: Annotated[str | None, Depends(_cursor)],
    job: JobDep,
    store: StoreDep,
    client: AsyncRedisDep,
    wait: WaitQuery = 0,
) -> JobRow:
    """A readable job; with `wait`, once it has finished or after `wait` seconds."""
    return await finished_within(job, store, client, wait, cursor)


WaitedJobDep = Annotated[JobRow, Depends(_waited)]


def with_result(job: JobRow) -> JobRow:
    """A job that has a result: it succeeded (else 409 with its status and error)."""
    if job.status != JobStatus.succeeded.value:
        detail = {"msg": f"job is {job.status}, it has no result", "status": job.status, "error": job.error}
        raise HTTPException(status_code=409, detail=detail)
    return job


async def _succeeded(job: JobDep) -> JobRow:
    return with_result(job)


async def _waited_result(job: WaitedJobDep) -> JobRow:
    return with_result(job)


SucceededJobDep = Annotated[JobRow, Depends(_succeeded)]
WaitedResultJobDep = Annotated[JobRow, Depends(_waited_result)]
"""A job that succeeded, waited for with `wait` (the long-poll for a result)."""
