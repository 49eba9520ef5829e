"""Liveness, readiness and Prometheus metrics."""

from typing import Any, Literal

import redis
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from workers.heartbeat import live_workers

from ..deps import AdminUser, RedisDep, StoreDep
from ..responses import ADMIN, Answer, answers

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """What /readyz found, checked in order: the store, the broker, the workers."""

    status: Literal["ready", "not ready"]
    reason: str | None = Field(None, description="why not ready")
    store: Literal["ok"] | None = Field(None, description="ok: the job store answered")
    broker: Literal["ok"] | None = Field(None, description="ok: Redis answered")
    workers: list[dict[str, Any]] | None = Field(
        None, description="the workers seen in the last heartbeats: name, queues, concurrency"
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
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


@router.get(
    "/readyz",
    responses=answers(Answer(200, "ready", Readiness), Answer(503, "not ready, with the reason", Readiness)),
)
async def readyz(store: StoreDep, client: RedisDep) -> JSONResponse:
    """Store and broker reachable and at least one worker seen recently."""
    checks, reason = await run_in_threadpool(readiness, store, client)
    if reason is not None:
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason, **checks})
    return JSONResponse(status_code=200, content={"status": "ready", **checks})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **answers(*ADMIN),
        200: {"description": "Prometheus text exposition format", "content": {CONTENT_TYPE_LATEST: {}}},
    },
)
def metrics(request: Request, _admin: AdminUser) -> Response:
    """For admins (a Prometheus scrape job with a bearer token): requests by route, method and
    status with their latencies, and at each scrape the fleet from the store and the heartbeats:
    jobs queued and running per queue and per owner, ended jobs by kind and status, failures by
    reason, redeliveries, job durations by kind, live workers and their job slots per queue, and
    each worker's heartbeat age."""
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
