"""The settings of the API and its launcher: the shared ones (`workers.settings`) and what only
they read, from the same environment (NTKDYN_HOST, NTKDYN_PORT, NTKDYN_MAX_FLOPS, ...): where to
listen, the limits of a request, how often lost jobs are sent again, the event stream's keep-alive.
The workers never see these."""

import os
from functools import lru_cache

from pydantic import Field

from schemas.costs import GIB, MIB
from workers.settings import Settings


class ServerSettings(Settings):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(8 * MIB, gt=0, description="larger request bodies get a 413")
    max_flops: float = Field(5e12, gt=0, description="compute budget of one job, in flop")
    max_memory_bytes: float = Field(4 * GIB, gt=0, description="memory budget of one job, in bytes")
    max_sweep_flops: float = Field(5e13, gt=0, description="compute budget of a sweep's children together")
    reconcile_seconds: float = Field(
        60, gt=0, description="how often the API re-sends active jobs the broker has lost"
    )
    events_keepalive_seconds: float = Field(
        15, gt=0, le=300, description="seconds between keep-alive comments on a quiet event stream"
    )

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
