"""Settings the API and the workers share, from the environment (NTKDYN_ prefix; REDIS_URL and
DATABASE_URL as usual): where Redis and the store are, and the limits and pace of jobs. What only
the API and its launcher read is in `service.server.settings`, which extends these.

Without REDIS_URL / DATABASE_URL the embedded stack is used: a redis-server on a unix socket and
a SQLite file, both in the data folder.
"""

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NTKDYN_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path(".ntkdyn"), description="embedded Redis socket, AOF and SQLite store")
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "NTKDYN_REDIS_URL"), description="external Redis"
    )
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "NTKDYN_DATABASE_URL"),
        description="external store (postgresql://...)",
    )
    max_job_seconds: float = Field(3600, gt=0, description="a job running longer fails")
    visibility_timeout: float | None = Field(
        None, gt=0, description="seconds before an unacknowledged task is redelivered (2x max job)"
    )
    unacked_restore_interval: float = Field(10, gt=0, description="seconds between redelivery sweeps")
    max_attempts: int = Field(3, ge=1, le=20, description="a job delivered this often and not done fails")
    progress_interval: float = Field(0.5, gt=0, description="least seconds between progress writes")
    worker_concurrency: int = Field(1, ge=1, le=256)
    worker_heartbeat_seconds: float = Field(5, gt=0)
    events_ttl_seconds: float = Field(
        86400, gt=0, description="a job's event stream expires this long after its last event"
    )
    task_events: bool = Field(
        False,
        description="Celery task events (sent, received, started, succeeded) for a monitor such as "
        "Flower: on in the deployed stack, off in `ntkdyn run`, where they only add publishes to a job",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is not None and urlparse(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {url!r}")
        return url

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, url: str | None) -> str | None:
        if url is None:
            return None
        scheme = urlparse(url).scheme
        if scheme in ("postgres", "postgresql"):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        if scheme in ("sqlite", "postgresql+psycopg"):
            return url
        raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, got scheme {scheme!r}")

    @model_validator(mode="after")
    def _visibility_covers_jobs(self) -> "Settings":
        if self.visibility_timeout is None:
            self.visibility_timeout = 2 * self.max_job_seconds
        elif self.visibility_timeout < 2 * self.max_job_seconds:
            raise ValueError(
                f"visibility_timeout {self.visibility_timeout}s must be at least twice "
                f"max_job_seconds ({self.max_job_seconds}s), or long jobs run twice"
            )
        return self

    @property
    def redis_socket(self) -> Path:
        return self.data_dir.resolve() / "redis.sock"

    @property
    def effective_redis_url(self) -> str:
        """A redis-py URL: the external one, or the embedded server's unix socket."""
        return self.redis_url or f"unix://{self.redis_socket}"

    @property
    def broker_url(self) -> str:
        """The same server in kombu's spelling (unix sockets are redis+socket://)."""
        url = self.effective_redis_url
        return "redis+socket://" + url[len("unix://") :] if url.startswith("unix://") else url

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'ntkdyn.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
