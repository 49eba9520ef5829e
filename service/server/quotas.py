"""What one user may ask of a shared service: queued and running jobs at once, estimated compute
in any 24 hours (both per user, defaults from the settings), and submits a minute per token.
Over a limit: 429 with Retry-After and the limit named."""

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from fastapi import HTTPException

from workers.dispatch import LOCK_POLL
from workers.store import JobStore
from workers.store.access import User
from workers.store.models import utcnow

from .settings import ServerSettings

DAY = timedelta(hours=24)
ACTIVE_RETRY_SECONDS = 30
"""Retry-After of a full active-jobs quota: no end time is known, jobs take seconds to hours."""


@dataclass(frozen=True)
class Limits:
    """A user's quotas."""

    max_active_jobs: int
    max_daily_flops: float


def limits_of(settings: ServerSettings, user: User) -> Limits:
    """The user's own limits where set (read with their token), else the service's defaults."""
    active, daily = user.max_active_jobs, user.max_daily_flops
    return Limits(
        max_active_jobs=settings.max_active_jobs_per_user if active is None else active,
        max_daily_flops=settings.max_daily_flops_per_user if daily is None else daily,
    )


def too_many(detail: str, retry_after: float) -> HTTPException:
    return HTTPException(
        status_code=429, detail=detail, headers={"Retry-After": str(max(1, math.ceil(retry_after)))}
    )


def admit(store: JobStore, limits: Limits, owner: str, new_flops: list[float]) -> None:
    """429 unless `owner` may add runs of these estimated costs: their queued and running jobs
    stay within max_active_jobs, and their runs of the last 24 hours within max_daily_flops
    (Retry-After: when enough of those age out)."""
    now = utcnow()
    active, spent = store.usage(owner, now - DAY)
    if active + len(new_flops) > limits.max_active_jobs:
        raise too_many(
            f"max_active_jobs: at most {limits.max_active_jobs} queued or running jobs; you have "
            f"{active} and this submit adds {len(new_flops)}",
            ACTIVE_RETRY_SECONDS,
        )
    need = sum(new_flops)
    if spent + need > limits.max_daily_flops:
        excess = spent + need - limits.max_daily_flops
        raise too_many(
            f"max_daily_flops: at most {limits.max_daily_flops:.3g} estimated flop in 24 hours; you "
            f"have used {spent:.3g} and this submit needs {need:.3g}",
            seconds_until_room(store.recent_runs(owner, now - DAY), excess, now),
        )


def seconds_until_room(recent: list[tuple[datetime, float]], excess: float, now: datetime) -> float:
    """When enough of the oldest runs (created_at, flops) leave the 24-hour window to free
    `excess`; a day when even all of them would not."""
    freed = 0.0
    for created, flops in recent:
        freed += flops
        if freed >= excess:
            return (created + DAY - now).total_seconds()
    return DAY.total_seconds()


def rate_limit(client: redis.Redis, user: User, per_minute: int) -> None:
    """429 after `per_minute` submits with one token within a clock minute."""
    now = time.time()
    key = f"ntkdyn:rate:{user.token or user.name}:{int(now // 60)}"
    count = client.incr(key)
    if count == 1:
        client.expire(key, 120)
    if count > per_minute:
        raise too_many(f"submit rate: at most {per_minute} submits a minute per token", 60 - now % 60)


@contextmanager
def admission(client: redis.Redis, owner: str) -> Iterator[None]:
    """One submit of a user at a time, across API processes, between counting their usage and
    storing the new jobs (so that a burst cannot overshoot a quota)."""
    with client.lock(f"ntkdyn:admit:{owner}", timeout=60, sleep=LOCK_POLL, blocking_timeout=60):
        yield
