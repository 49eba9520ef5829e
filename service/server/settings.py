"""The settings of the API and its launcher: the shared ones (`workers.settings`) and what only
they read, from the same environment (NTKDYN_HOST, NTKDYN_PORT, NTKDYN_MAX_FLOPS, ...): where to
listen, the limits of a request, how often lost jobs are sent again, the event stream's keep-alive.
The workers never see these."""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator

from schemas.costs import GIB, MIB
from workers.settings import Settings

LOOPBACK = ("127.", "::1", "localhost")


class ServerSettings(Settings):
    auth: bool = Field(
        True,
        description="require a bearer token on every /v1 route; off only on loopback, for one user",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(8 * MIB, gt=0, description="larger request bodies get a 413")
    max_flops: float = Field(
        5e13, gt=0, description="compute budget of one job, in flop (~5e10 a second per worker process)"
    )
    max_memory_bytes: float = Field(4 * GIB, gt=0, description="memory budget of one job, in bytes")
    max_sweep_flops: float = Field(5e13, gt=0, description="compute budget of a sweep's children together")
    max_active_jobs_per_user: int = Field(
        100, ge=1, description="queued and running jobs one user may hold (per-user: ntkdyn user set)"
    )
    max_daily_flops_per_user: float = Field(
        5e15, gt=0, description="estimated flop one user's new runs may add in 24 hours (per-user too)"
    )
    submit_rate_per_minute: int = Field(120, ge=1, description="submits a minute per token")
    reconcile_seconds: float = Field(
        60, gt=0, description="how often the API re-sends active jobs the broker has lost"
    )
    events_keepalive_seconds: float = Field(
        15, gt=0, le=300, description="seconds between keep-alive comments on a quiet event stream"
    )

    @model_validator(mode="after")
    def _no_open_door(self) -> "ServerSettings":
        if not self.auth and not self.host.startswith(LOOPBACK):
            raise ValueError(
                f"refusing to listen on {self.host} with NTKDYN_AUTH=false: anyone who reaches it "
                "could run and cancel jobs; enable auth or bind to 127.0.0.1"
            )
        return self

    @property
    def token_file(self) -> Path:
        """Where the first start writes the first admin token (mode 0600)."""
        return self.data_dir.resolve() / "admin.token"

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def environment(self) -> dict[str, str]:
        """Environment that gives a child process these same endpoints."""
        env = dict(os.environ)
        env["REDIS_URL"] = self.effective_redis_url
        env["DATABASE_URL"] = self.effective_database_url
        env["NTKDYN_DATA_DIR"] = str(self.data_dir.resolve())
        return env


@lru_cache
def get_server_settings() -> ServerSettings:
    return ServerSettings()
