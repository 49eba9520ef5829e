"""Liveness and readiness."""

from typing import Any

import redis
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from workers.heartbeat import live_workers

from ..deps import RedisDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def readiness(store: StoreDep, client: RedisDep) -> tuple[dict[str, Any], str | None]:
    checks: dict[str, Any] = {}
    try:
        store.ping()
        checks["store"] = "ok"
    except SQLAlchemyError as error:
        return checks, f"store unreachable: {type(error).__name__}"
    try:
        client.ping()
        checks["broker"] = "ok"
        checks["workers"] = live_workers(client)
    except redis.RedisError as error:
        return checks, f"broker unreachable: {error}"
    if not checks["workers"]:
        return checks, "no worker seen in the last heartbeats"
    return checks, None


@router.get("/readyz", responses={503: {"description": "not ready, with the reason"}})
async def readyz(store: StoreDep, client: RedisDep) -> JSONResponse:
    """Store and broker reachable and at least one worker seen recently."""
    checks, reason = await run_in_threadpool(readiness, store, client)
    if reason is not None:
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason, **checks})
    return JSONResponse(status_code=200, content={"status": "ready", **checks})
