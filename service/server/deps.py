"""Request dependencies as Annotated aliases; the validating ones return the loaded object."""

from typing import Annotated

import redis
import redis.asyncio
from celery import Celery
from fastapi import Depends, HTTPException, Path, Request

from workers.store import JobRow, JobStore

from .settings import ServerSettings


def _store(request: Request) -> JobStore:
    return request.app.state.store


def _settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def _celery(request: Request) -> Celery:
    return request.app.state.celery


def _redis(request: Request) -> redis.Redis:
    return request.app.state.redis


def _async_redis(request: Request) -> redis.asyncio.Redis:
    return request.app.state.async_redis


def _current_user() -> str:
    """Everyone is `anonymous` until access control lands."""
    return "anonymous"


StoreDep = Annotated[JobStore, Depends(_store)]
SettingsDep = Annotated[ServerSettings, Depends(_settings)]
CeleryDep = Annotated[Celery, Depends(_celery)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
AsyncRedisDep = Annotated[redis.asyncio.Redis, Depends(_async_redis)]
CurrentUser = Annotated[str, Depends(_current_user)]


def _job(store: StoreDep, job_id: Annotated[str, Path(max_length=64)]) -> JobRow:
    row = store.get(job_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no job with id {job_id!r}")
    return row


JobDep = Annotated[JobRow, Depends(_job)]
