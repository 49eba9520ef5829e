"""The FastAPI application."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import redis
import redis.asyncio
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from kombu.exceptions import OperationalError
from sqlalchemy.exc import SQLAlchemyError

from workers.celery_app import make_celery
from workers.dispatch import Dispatcher
from workers.events import EventLog
from workers.reconciler import Reconciler, WorkerWatch
from workers.store import JobStore, make_engine, migrate
from workers.store.access import AccessStore

from .docs import offline_app
from .errors import BodySizeLimit, install_error_handlers
from .metrics import install_metrics
from .private import write_private
from .routes import access, events, figures, health, jobs
from .routes.pages import install_pages
from .settings import ServerSettings, get_server_settings

log = logging.getLogger(__name__)
STREAM_READ_MARGIN = 10.0
"""Seconds an event stream's blocking read may take beyond the keep-alive period before the
socket counts as dead."""


def bootstrap_admin(access: AccessStore, settings: ServerSettings) -> None:
    """On the first start of a store without an admin: create one and write their token, 0600,
    to the data folder (the CLI and the Python client read it from there)."""
    token = access.bootstrap_admin()
    if token is not None:
        write_private(settings.token_file, token + "\n")
        log.warning("created the first admin token; it is in %s (mode 0600)", settings.token_file)


async def every_pass(run_pass: Callable[[], object], every: float, what: str) -> None:
    """Run a pass of the reconciler or of the worker watch every `every` seconds; a broker or
    store outage only delays a pass."""
    while True:
        try:
            await run_in_threadpool(run_pass)
        except (redis.RedisError, OperationalError, SQLAlchemyError) as error:
            log.warning("%s pass skipped, will retry: %s", what, error)
        except Exception:  # a bug must not end reconciliation for every user: log it, go on
            log.exception("%s pass failed, will retry", what)
        await asyncio.sleep(every)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or get_server_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        app.state.settings = settings
        app.state.store = JobStore(engine)
        app.state.access = AccessStore(engine)
        if settings.auth:
            bootstrap_admin(app.state.access, settings)
        app.state.celery = make_celery(settings)
        url = settings.effective_redis_url
        app.state.redis = redis.Redis.from_url(url, socket_timeout=5)
        # event streams block on XREAD for up to the keep-alive period: the socket must outwait
        # it (redis-py's default socket timeout of 5 s broke every quieter stream)
        read_timeout = settings.events_keepalive_seconds + STREAM_READ_MARGIN
        app.state.async_redis = redis.asyncio.Redis.from_url(
            url, decode_responses=True, socket_timeout=read_timeout
        )
        every = settings.reconcile_seconds
        events = EventLog(app.state.redis, settings.events_ttl_seconds)
        reconciler = Reconciler(app.state.store, app.state.redis, app.state.celery, every, events)
        beat = settings.worker_heartbeat_seconds  # the watch looks as often as workers beat
        watch = WorkerWatch(app.state.redis, beat)
        dispatcher = Dispatcher(app.state.store, app.state.redis, app.state.celery)
        loops = [
            asyncio.create_task(every_pass(reconciler.run_pass, every, "reconciliation")),
            asyncio.create_task(every_pass(watch.run_pass, beat, "worker watch")),
            asyncio.create_task(every_pass(dispatcher.run_pass, beat, "dispatch")),
        ]
        yield
        for loop in loops:
            loop.cancel()
            with suppress(asyncio.CancelledError):
                await loop
        app.state.redis.close()
        await app.state.async_redis.aclose()
        engine.dispose()

    app = offline_app(
        title="ntkdyn",
        summary="Optimization dynamics of over-parameterized neural networks, as a service.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.state.metrics_registry = install_metrics(app)
    app.include_router(jobs.router)
    app.include_router(figures.router)
    app.include_router(events.router)
    app.include_router(access.router)
    app.include_router(health.router)
    install_pages(app)
    return app
