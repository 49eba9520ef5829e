"""Settings from the environment: the API reads its own (NTKDYN_HOST, NTKDYN_PORT, ...) beside the
shared ones, and the shared ones are all a worker sees."""

import pytest
from pydantic import ValidationError

from service.server.settings import ServerSettings
from workers.celery_app import make_celery
from workers.settings import Settings

API_ONLY = {
    "host",
    "port",
    "max_body_bytes",
    "max_flops",
    "max_memory_bytes",
    "max_sweep_flops",
    "reconcile_seconds",
    "events_keepalive_seconds",
    "auth",
    "max_active_jobs_per_user",
    "max_daily_flops_per_user",
    "submit_rate_per_minute",
}


def test_the_api_reads_its_settings_and_the_shared_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "NTKDYN_HOST": "0.0.0.0",
        "NTKDYN_PORT": "9000",
        "NTKDYN_MAX_BODY_BYTES": "1024",
        "NTKDYN_MAX_FLOPS": "1e9",
        "NTKDYN_EVENTS_KEEPALIVE_SECONDS": "2",
        "NTKDYN_MAX_JOB_SECONDS": "60",
        "REDIS_URL": "redis://broker:6379/0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = ServerSettings()
    assert (settings.host, settings.port, settings.max_body_bytes) == ("0.0.0.0", 9000, 1024)
    assert (settings.max_flops, settings.events_keepalive_seconds) == (1e9, 2)
    assert (settings.max_job_seconds, settings.visibility_timeout) == (60, 120)
    assert not settings.embedded_redis and settings.environment()["REDIS_URL"] == "redis://broker:6379/0"


def test_a_worker_sees_none_of_the_api_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(ServerSettings.model_fields) - set(Settings.model_fields) == API_ONLY | {"auth"}
    monkeypatch.setenv("NTKDYN_PORT", "not a port")
    assert not hasattr(Settings(), "port")
    with pytest.raises(ValidationError, match="port"):
        ServerSettings()


def test_task_events_are_sent_only_when_asked_for() -> None:
    # off in `ntkdyn run` (each would add a publish to a job), on in the compose file for Flower
    for asked in (False, True):
        conf = make_celery(Settings(task_events=asked)).conf
        assert (conf.worker_send_task_events, conf.task_send_sent_event) == (asked, asked)
