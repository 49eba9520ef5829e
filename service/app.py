"""The FastAPI application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI

from workers.celery_app import make_celery
from workers.settings import Settings, get_settings
from workers.store import JobStore, make_engine, migrate

from .errors import BodySizeLimit, install_error_handlers
from .routes import health, jobs


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.effective_database_url)
        migrate(engine)
        app.state.settings = settings
        app.state.store = JobStore(engine)
        app.state.celery = make_celery(settings)
        app.state.redis = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=5)
        yield
        app.state.redis.close()
        engine.dispose()

    app = FastAPI(
        title="ntkdyn",
        summary="Optimization dynamics of over-parameterized neural networks, as a service.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.include_router(jobs.router)
    app.include_router(health.router)
    return app
