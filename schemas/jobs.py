"""The job contract of the REST API: submissions, views, pages."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import SpecModel
from schemas.experiments import ExperimentSpec
from schemas.results import ExperimentResult
from schemas.sweep import SweepResult, SweepSpec

SubmittedSpec = Annotated[ExperimentSpec | SweepSpec, Field(discriminator="kind")]
"""What a client may submit: an experiment of one kind, or a sweep of them."""

JobResult = Annotated[ExperimentResult | SweepResult, Field(discriminator="kind")]
"""What a succeeded job answers: the result of its experiment's kind, or its sweep's table."""


Visibility = Literal["private", "lab"]


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class JobState(BaseModel):
    """The data of every event of `GET /v1/jobs/{id}/events` (Server-Sent Events `progress` and
    `status`): where the job stands."""

    status: JobStatus
    progress: float = Field(ge=0, le=1)
    message: str = Field(max_length=500)
    error: str | None = None


class JobRequest(SpecModel):
    """POST /v1/jobs body: the experiment spec and whether a finished identical job may answer."""

    spec: SubmittedSpec
    reuse: bool = Field(
        True,
        description="answer with an identical job that has succeeded or is still queued or running "
        "instead of running the spec again; false: a new run, which identical submits do not join",
    )
    visibility: Visibility = Field(
        "private",
        description="private: you and the admins see the job; lab: every user may read it, and an "
        "identical submit of another user reuses its result (as their own copy)",
    )


class JobView(BaseModel):
    """What the API shows of a job."""

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    message: str
    attempts: int
    cancel_requested: bool
    cached: bool = Field(
        False, description="true when an identical job (succeeded, queued or running) answered the request"
    )
    spec_hash: str
    queue: str
    owner: str
    visibility: Visibility
    source_id: str | None = Field(
        None, description="the lab-visible job of another user whose result this one reuses"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    parent_id: str | None = Field(None, description="the sweep this job is a grid point of")
    children: list[str] | None = Field(None, description="a sweep's child jobs, in grid order")
    links: dict[str, str]


class JobPage(BaseModel):
    """One page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[JobView]
    next_cursor: str | None
