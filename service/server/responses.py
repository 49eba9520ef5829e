"""Every status a route answers, for the OpenAPI document: the bodies the API really sends on an
error (`errors.py`, `deps.py`, `quotas.py`) as models, and `answers(...)`, a route's `responses=`
from its status codes, e.g. `responses=answers(*A_JOB, 409)`."""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """The body of a 401, 403, 404, 409, 413, 429 or 503: what went wrong, in words."""

    detail: str


class FieldError(BaseModel):
    """One wrong field of a request."""

    loc: list[str | int] = Field(
        description="where: `body`, `query`, `path` or `header`, then the field's path"
    )
    msg: str = Field(description="why, in words")
    type: str = Field(description="the kind of error, e.g. `missing`, `greater_than`, `budget_exceeded`")


class Invalid(BaseModel):
    """The body of a 422: each wrong field, where and why (never the input echoed back)."""

    detail: list[FieldError]


class Unfinished(BaseModel):
    """Why a job has no result: its status, and its error if it failed."""

    msg: str
    status: str
    error: str | None


class NoResult(BaseModel):
    """The body of the 409 of a job's result: the job has not succeeded."""

    detail: Unfinished


@dataclass(frozen=True)
class Answer:
    """One status of a route: what it means there, the model of its body, and its headers (name:
    meaning)."""

    status: int
    description: str
    model: type[BaseModel] = Problem
    headers: dict[str, str] = field(default_factory=dict)

    def openapi(self) -> dict[str, Any]:
        """As an entry of FastAPI's `responses=`."""
        entry: dict[str, Any] = {"model": self.model, "description": self.description}
        if self.headers:
            entry["headers"] = {
                name: {"description": meaning, "schema": {"type": "string"}}
                for name, meaning in self.headers.items()
            }
        return entry


ERRORS = {
    answer.status: answer
    for answer in (
        Answer(
            401,
            "no valid bearer token (when the server requires tokens)",
            headers={"WWW-Authenticate": "`Bearer`"},
        ),
        Answer(403, "not allowed to this user"),
        Answer(404, "not found"),
        Answer(409, "not possible in the current state"),
        Answer(413, "request body larger than the server's `max_body_bytes`"),
        Answer(422, "an invalid parameter or body: each wrong field's path and reason", Invalid),
        Answer(
            429,
            "over a quota (queued and running jobs, compute in 24 hours) or the submit rate",
            headers={"Retry-After": "seconds until a submit may succeed"},
        ),
        Answer(503, "the job store or the broker (Redis) cannot be reached"),
    )
}
"""Each error status with its usual meaning and body."""

SIGNED_IN = (401, 503)
"""Any route acting as the token's user: the token is checked against the store."""
ADMIN = (*SIGNED_IN, Answer(403, "not an admin"))
"""A route for admins only."""
A_JOB = (*SIGNED_IN, Answer(403, "another user's private job"), Answer(404, "no job with this id"), 422)
"""A route on one job, `/v1/jobs/{job_id}...`: a job the user may read."""
A_RESULT = (*A_JOB, Answer(409, "the job has not succeeded", NoResult))
"""A route on a job's result: a job the user may read that has succeeded."""


def answers(*statuses: int | Answer) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status as in ERRORS, or as an Answer of the route's own."""
    chosen = [status if isinstance(status, Answer) else ERRORS[status] for status in statuses]
    return {answer.status: answer.openapi() for answer in chosen}
