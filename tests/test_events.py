"""A job's event stream end to end: a real worker publishes through Redis, the API serves
Server-Sent Events over HTTP, a client reads them, resumes with Last-Event-ID, and the stream
ends with the job."""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from service.server.app import create_app
from service.server.embedded import EmbeddedRedis
from service.server.settings import ServerSettings
from workers.events import stream_key
from workers.store import JobStore, make_engine
from workers.store.jobs import new_job

from .conftest import Stack, admin_token, serving
from .test_api import sphere


@dataclass
class Reading:
    """What one connection to an event stream carried, in order."""

    events: list[dict] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str) -> dict | None:
        """The event this line completes, if any."""
        if line.startswith(":"):
            self.comments.append(line)
        elif line:
            name, _, value = line.partition(": ")
            self.fields[name] = value
        elif self.fields:
            event = {
                "id": self.fields["id"],
                "event": self.fields["event"],
                **json.loads(self.fields["data"]),
            }
            self.events.append(event)
            self.fields = {}
            return event
        return None


def steady(seed: int) -> dict:
    """A kernel job of a second or more (on a quiet 2-core machine) that reports progress all along."""
    return sphere(n=128, seed=seed, empirical_width=2**20)


def connect(url: str, job_id: str, last_id: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {os.environ['NTKDYN_TOKEN']}"}  # set by `served`
    headers.update({"Last-Event-ID": last_id} if last_id else {})
    request = httpx.Request("GET", f"{url}/v1/jobs/{job_id}/events", headers=headers)
    return httpx.Client(timeout=60).send(request, stream=True)


def read(url: str, job_id: str, last_id: str | None = None) -> Reading:
    """Every event and comment of one connection, until the server ends the stream."""
    reading = Reading()
    response = connect(url, job_id, last_id)
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    for line in response.iter_lines():
        reading.feed(line)
    return reading


def order(event_id: str) -> tuple[int, int]:
    milliseconds, sequence = event_id.split("-")
    return int(milliseconds), int(sequence)


def test_a_job_streams_from_queued_to_its_end(stack: Stack, served: str) -> None:
    busy = stack.submit(steady(seed=300))
    job = stack.submit(steady(seed=301))
    reading = read(served, job["id"])
    first, last = reading.events[0], reading.events[-1]
    assert (first["event"], first["status"]) == ("status", "queued")
    assert reading.comments and all(comment == ": keep-alive" for comment in reading.comments)
    assert (last["event"], last["status"], last["progress"], last["message"]) == (
        "status",
        "succeeded",
        1.0,
        "done",
    )
    statuses = [event["status"] for event in reading.events if event["event"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    progress = [event for event in reading.events if event["event"] == "progress"]
    assert len(progress) >= 3 and any("neurons" in event["message"] for event in progress)
    fractions = [event["progress"] for event in progress]
    assert fractions == sorted(fractions) and 0 <= fractions[0] < fractions[-1] <= 1
    ids = [order(event["id"]) for event in reading.events[1:]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert stack.client.get(f"/v1/jobs/{busy['id']}").json()["status"] == "succeeded"


def test_resume_after_the_last_event_id(stack: Stack, served: str) -> None:
    job = stack.submit(steady(seed=302))
    whole = read(served, job["id"]).events
    middle = len(whole) // 2
    resumed = read(served, job["id"], last_id=whole[middle]["id"]).events
    assert resumed == whole[middle + 1 :] and resumed[-1]["status"] == "succeeded"

    after_the_end = read(served, job["id"], last_id=whole[-1]["id"]).events
    assert [(event["event"], event["status"]) for event in after_the_end] == [("status", "succeeded")]


def test_a_finished_job_streams_its_final_status_even_once_expired(stack: Stack, served: str) -> None:
    job = stack.wait(stack.submit(sphere(seed=303))["id"])
    assert job["status"] == "succeeded"
    for _expired in (False, True):
        events = read(served, job["id"]).events
        assert [(event["event"], event["status"], event["progress"]) for event in events] == [
            ("status", "succeeded", 1.0)
        ]
        redis.Redis.from_url(stack.settings.effective_redis_url).delete(stream_key(job["id"]))

    tiny = {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]}
    failed = stack.wait(stack.submit({"kind": "kernel", "dataset": tiny})["id"])
    (event,) = read(served, failed["id"]).events
    assert event["status"] == "failed" and "the kernel is zero" in event["error"]


def test_a_cancel_is_streamed_to_its_end(stack: Stack, served: str) -> None:
    job = stack.submit(steady(seed=304))
    reading = Reading()
    cancelled = False
    for line in connect(served, job["id"]).iter_lines():
        event = reading.feed(line)
        if event is not None and event["event"] == "progress" and not cancelled:
            assert stack.client.delete(f"/v1/jobs/{job['id']}").status_code == 202
            cancelled = True
    messages = [(event["status"], event["message"]) for event in reading.events if event["event"] == "status"]
    assert ("running", "cancel requested") in messages
    assert messages[-1] == ("cancelled", "cancelled")


def test_unknown_job_is_404_and_a_bad_event_id_is_422(stack: Stack, served: str) -> None:
    assert connect(served, "0123456789abcdef").status_code == 404
    job = stack.submit(sphere(seed=305))
    response = connect(served, job["id"], last_id="yesterday")
    response.read()
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]
    stack.wait(job["id"])


def test_a_quiet_stream_outlasts_the_redis_clients_default_timeout(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    """A queued job with no worker says nothing for longer than redis-py's default socket
    timeout (5 s): with a keep-alive of 6 s the stream must send its keep-alive comment and stay
    open, not break at the fifth second (sweeps and queued jobs broke every client this way)."""
    settings = ServerSettings(
        data_dir=tmp_path,
        redis_url=redis_server.url,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        events_keepalive_seconds=6,
    )
    with serving(create_app(settings)) as url:
        store = JobStore(make_engine(settings.effective_database_url))
        job = store.create(
            new_job(
                kind="kernel", spec={}, spec_hash="quiet", queue="cpu", owner="a", message="", shared=False
            )
        )
        reading = Reading()
        started = time.monotonic()
        with (
            httpx.Client(timeout=30, headers={"Authorization": f"Bearer {admin_token(settings)}"}) as client,
            client.stream("GET", f"{url}/v1/jobs/{job.id}/events") as response,
        ):
            for line in response.iter_lines():
                reading.feed(line)
                if reading.comments:
                    break
        assert reading.comments == [": keep-alive"] and 6 <= time.monotonic() - started < 15
        assert [event["status"] for event in reading.events] == ["queued"]
        store.engine.dispose()
