"""/v1/jobs: submit, inspect, wait for, page through and cancel jobs."""

import functools
import logging
import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BeforeValidator, Field
from redis.exceptions import LockError, RedisError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from schemas import JobPage, JobRequest, JobStatus, JobView, over_budget, spec_hash
from schemas.examples import SPEC_EXAMPLES
from schemas.jobs import JobResult
from schemas.sweep import SweepSpec
from service import tables
from workers import sweeps
from workers.celery_app import SWEEP_QUEUE, queue_for
from workers.dispatch import Dispatcher
from workers.events import EventLog
from workers.heartbeat import live_workers
from workers.store import JobRow, JobStore
from workers.store.access import User
from workers.store.jobs import RACE_TRIES, new_job, reused
from workers.version import ENGINE_VERSION

from ..deps import (
    AccessDep,
    CeleryDep,
    CurrentUser,
    OwnJobDep,
    RedisDep,
    SettingsDep,
    StoreDep,
    WaitedJobDep,
    WaitedResultJobDep,
)
from ..errors import field_error
from ..formats import MEDIA_TYPES, ResultFormat, csv_bytes, npz_bytes, parquet_bytes
from ..quotas import Limits, admission, admit, limits_of, rate_limit
from ..responses import A_JOB, A_RESULT, SIGNED_IN, Answer, Invalid, answers
from ..settings import ServerSettings
from .paging import decode_cursor, empty_is_none, encode_cursor

log = logging.getLogger(__name__)
SUBMIT_LOCK_WAIT = 0.25
"""Seconds a submit waits for another dispatch pass to end before leaving its own for later."""
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def view(row: JobRow, cached: bool = False) -> JobView:
    path = f"/v1/jobs/{row.id}"
    return JobView(
        id=row.id,
        kind=row.kind,
        status=JobStatus(row.status),
        progress=row.progress,
        message=row.message,
        attempts=row.attempts,
        cancel_requested=row.cancel_requested,
        cached=cached,
        spec_hash=row.spec_hash,
        queue=row.queue,
        owner=row.owner,
        visibility=row.visibility,
        source_id=row.source_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        parent_id=row.parent_id,
        children=row.children,
        links={"self": path, "result": f"{path}/result"},
    )


@router.post(
    "",
    status_code=202,
    response_model=JobView,
    responses=answers(
        Answer(200, "an identical succeeded job answers (`cached: true`)", JobView),
        Answer(202, "queued: a new job, or an identical queued or running one (`cached: true`)", JobView),
        *SIGNED_IN,
        413,
        Answer(422, "an invalid spec, over the job or sweep budget, or for a GPU no worker serves", Invalid),
        429,
    ),
)
def submit(
    request: Annotated[JobRequest, Body(openapi_examples=SPEC_EXAMPLES)],
    response: Response,
    later: BackgroundTasks,
    store: StoreDep,
    settings: SettingsDep,
    celery: CeleryDep,
    redis: RedisDep,
    access: AccessDep,
    user: CurrentUser,
) -> Any:
    """Validate, check the budget, then answer with an identical job (succeeded: 200; queued or
    running: 202, the same job for every identical submit) or store and queue a new one. A sweep
    stores itself and one child job per distinct grid point, reusing identical jobs the same way."""
    spec = request.spec
    rate_limit(redis, user, settings.submit_rate_per_minute)
    limits = limits_of(settings, user)
    if isinstance(spec, SweepSpec):
        answer = submit_sweep(spec, request, user, limits, response, later, store, settings, celery, redis)
    else:
        check_budget(spec, settings, gpu_served(redis), ["body", "spec"])
        row = new_job(**job_fields(spec, user, request))
        with admission(redis, user.name):
            row, created = store.find_or_create(row, lambda: admit(store, limits, user.name, [row.flops]))
        response.headers["Location"] = f"/v1/jobs/{row.id}"
        if created:
            dispatch(store, redis, celery, later)
        else:
            response.status_code = 200 if JobStatus(row.status).finished else 202
        answer = view(row, cached=not created)
    detail = f"{answer.kind}, {answer.visibility}" + (", reused" if answer.cached else "")
    access.record(user.name, "job.submit", answer.id, detail)
    return answer


def gpu_served(redis: Any) -> Callable[[], bool]:
    """Whether a live worker serves the gpu queue: asked of Redis once, when first needed."""
    return functools.cache(lambda: any("gpu" in worker["queues"] for worker in live_workers(redis)))


def check_budget(
    spec: Any, settings: ServerSettings, served: Callable[[], bool], where: list[str | int]
) -> None:
    """422 when the spec is over the job budget, or wants a GPU no worker serves."""
    reason = over_budget(spec.cost(), settings.max_flops, settings.max_memory_bytes)
    if reason is not None:
        raise field_error(where, reason, "budget_exceeded")
    if queue_for(spec.device) == "gpu" and not served():
        msg = "no worker serves the gpu queue; start one with `ntkdyn worker --queues gpu`"
        raise field_error([*where, spec.kind, "device"], msg, "no_gpu_worker")


def job_fields(spec: Any, user: User, request: JobRequest) -> dict[str, Any]:
    """A new job's columns; the stored spec is the dump that validates back to `spec`."""
    queue = queue_for(spec.device)
    return {
        "kind": spec.kind,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec_hash(spec, ENGINE_VERSION),
        "queue": queue,
        "owner": user.name,
        "message": f"waiting for a worker on queue {queue!r}",
        "shared": request.reuse,
        "visibility": request.visibility,
        "flops": spec.cost().flops,
    }


def dispatch(store: JobStore, redis: Any, celery: Any, later: BackgroundTasks) -> None:
    """Send the next fair jobs to the free workers (`workers.dispatch`) before the submit
    answers: the worker starts on the new job while the answer travels (run after the answer,
    the pass waited on the client's next request in the same process, ~7 ms of a tiny job's
    22). Another pass holding the lock may have read the queue before this job was stored, so
    when the lock is not free within SUBMIT_LOCK_WAIT, one more pass runs after the answer. The
    new job is stored either way: a broker that fails now, or an API that dies before the
    pass, leaves it to the periodic pass."""
    try:
        Dispatcher(store, redis, celery).run_pass(wait=SUBMIT_LOCK_WAIT)
    except LockError:
        later.add_task(dispatch_later, store, redis, celery)
    except (OperationalError, RedisError) as error:
        log.warning("dispatch at a submit skipped, the periodic pass will do it: %s", error)


def dispatch_later(store: JobStore, redis: Any, celery: Any) -> None:
    """The submit's pass, after its answer has left, waiting as long as a pass may take."""
    try:
        Dispatcher(store, redis, celery).run_pass()
    except (OperationalError, RedisError, LockError) as error:
        log.warning("dispatch after a submit skipped, the periodic pass will do it: %s", error)


def submit_sweep(
    spec: SweepSpec,
    request: JobRequest,
    user: User,
    limits: Limits,
    response: Response,
    later: BackgroundTasks,
    store: JobStore,
    settings: ServerSettings,
    celery: Any,
    redis: Any,
) -> JobView:
    """Every grid point within the job budget, all of them within the sweep budget; then the
    parent and its new children in one transaction, and the new children to their queues. The
    parent itself is never reused: its finished children are (so a point that failed runs
    again), and a sweep whose children are all reused ends at once."""
    children = spec.children
    served = gpu_served(redis)
    for number, (child, (_, baseline)) in enumerate(zip(children, spec.labels(), strict=True)):
        where = f"grid point {number}" if baseline is None else f"baseline {baseline!r}"
        check_budget(child, settings, served, ["body", "spec", "sweep", "axes", where])
    total = over_budget(spec.cost(), settings.max_sweep_flops, math.inf)
    if total is not None:
        raise field_error(
            ["body", "spec", "sweep", "axes"], f"the sweep's children together: {total}", "budget_exceeded"
        )
    with admission(redis, user.name):
        for _ in range(RACE_TRIES):
            parent, grid = sweep_rows(spec, store, user, request)
            runs = {id(child): child.flops for child in grid if isinstance(child, JobRow) and child.flops > 0}
            admit(store, limits, user.name, list(runs.values()))
            try:
                created = store.create_sweep(parent, grid)
                break
            except IntegrityError:  # an identical child was stored meanwhile: plan the grid again
                continue
        else:
            raise HTTPException(status_code=503, detail="identical submits kept racing; submit again")
    if any(row.status == JobStatus.queued.value for row in created):  # not only lab copies
        dispatch(store, redis, celery, later)
    response.headers["Location"] = f"/v1/jobs/{parent.id}"
    try:  # stored and sent: from here on a store error must not make the client submit again
        sweeps.advance(store, parent, EventLog(redis, settings.events_ttl_seconds))  # all reused: done
        return view(store.get(parent.id) or parent)
    except SQLAlchemyError as error:  # the reconciler advances it later
        log.warning("sweep %s stored, but not advanced at submit: %s", parent.id, error)
        return view(parent)


def sweep_rows(
    spec: SweepSpec, store: JobStore, user: User, request: JobRequest
) -> tuple[JobRow, list[JobRow | str]]:
    """The sweep's parent and its grid: per point the id of the job that answers it (with
    `reuse`: the user's identical succeeded, queued or running job), a copy of another user's
    lab-visible result, or a new child; identical points share one child."""
    fields = [job_fields(child, user, request) for child in spec.children]
    hits = store.find_reusable_many([f["spec_hash"] for f in fields], user.name) if request.reuse else {}
    planned: dict[str, JobRow | str] = {}
    for f in fields:
        hit = hits.get(f["spec_hash"])
        if hit is not None and f["spec_hash"] not in planned:
            planned[f["spec_hash"]] = hit.id if hit.owner == user.name else reused(new_job(**f), hit)
    grid = [planned.setdefault(f["spec_hash"], new_job(**f)) for f in fields]
    parent = new_job(
        kind="sweep",
        spec=spec.model_dump(mode="json"),
        spec_hash=spec_hash(spec, ENGINE_VERSION),
        queue=SWEEP_QUEUE,
        owner=user.name,
        message=f"{len(fields)} children",
        shared=False,
        visibility=request.visibility,
    )
    return parent, grid


@router.get("", response_model=JobPage, responses=answers(*SIGNED_IN, 422))
def list_jobs(
    store: StoreDep,
    user: CurrentUser,
    status: Annotated[JobStatus | None, BeforeValidator(empty_is_none)] = None,
    kind: Annotated[Annotated[str, Field(max_length=32)] | None, BeforeValidator(empty_is_none)] = None,
    owner: Annotated[Annotated[str, Field(max_length=64)] | None, BeforeValidator(empty_is_none)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JobPage:
    """Jobs newest first, filtered by status, kind and owner: an admin's are everyone's, a
    member's their own and the lab-visible ones."""
    rows = store.page(
        status=status.value if status else None,
        kind=kind,
        owner=owner,
        visible_to=None if user.admin else user.name,
        limit=limit + 1,
        before_seq=decode_cursor(cursor),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].seq) if more else None
    return JobPage(items=[view(row) for row in rows], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobView, responses=answers(*A_JOB))
async def get_job(job: WaitedJobDep) -> JobView:
    """The job; with `wait`, returns as soon as it has finished or after `wait` seconds."""
    return view(job)


@router.get(
    "/{job_id}/result",
    responses={  # documented, not validated again: the worker wrote the document from its model
        200: {
            "model": JobResult,
            "description": "json: the result model of the job's kind; csv, parquet: one of its tidy "
            "tables; npz: every table's columns (`TABLE.COLUMN`) and its other arrays (`matrix`)",
            "content": {MEDIA_TYPES[shape]: {} for shape in ResultFormat if shape is not ResultFormat.json},
        },
        **answers(*A_RESULT),
    },
)
def get_result(
    job: WaitedResultJobDep,
    shape: Annotated[
        ResultFormat, Query(alias="format", description="json, or the result as files for notebooks")
    ] = ResultFormat.json,
    table: Annotated[
        str | None,
        Query(max_length=32, description="csv, parquet: which table (default: the kind's first)"),
    ] = None,
) -> Any:
    """The result of a succeeded job: the JSON document (its model depends on the job's kind), one
    of its tidy tables as CSV or Parquet (one row per observation: per recorded step, optimizer and
    replicate for trajectories), or all of them and its arrays as npz."""
    if shape is ResultFormat.json or shape is ResultFormat.npz:
        if table is not None:
            raise field_error(
                ["query", "table"], f"a table is chosen for csv or parquet, not {shape}", "value_error"
            )
        if shape is ResultFormat.json:  # without FastAPI's encoder walking it: 2.6 -> 0.8 ms at 32 KB
            return JSONResponse(job.result)
        content = npz_bytes(tables.arrays(job.result))
        name = f"{job.id}.npz"
    else:
        try:
            chosen, found = tables.table(job.result, table)
        except ValueError as error:
            raise field_error(["query", "table"], str(error), "value_error") from None
        content = (csv_bytes if shape is ResultFormat.csv else parquet_bytes)(found)
        name = f"{job.id}-{chosen}.{shape}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(content, media_type=shape.media_type, headers=headers)


@router.delete(
    "/{job_id}",
    response_model=JobView,
    responses=answers(
        Answer(200, "cancelled at once: a queued job, or a sweep and its unfinished children", JobView),
        Answer(202, "a running job: it stops at its next progress check", JobView),
        *A_JOB,
        Answer(409, "the job has already finished"),
    ),
)
def cancel_job(
    job: OwnJobDep,
    store: StoreDep,
    redis: RedisDep,
    settings: SettingsDep,
    access: AccessDep,
    user: CurrentUser,
    response: Response,
) -> JobView:
    """Cancel your job (an admin: any job): a queued job ends `cancelled` at once (200); a running
    one stops at its next progress check (202); a sweep ends `cancelled` at once, its unfinished
    children each cancelled as above (200); a finished job cannot be cancelled (409)."""
    if JobStatus(job.status).finished:
        raise HTTPException(status_code=409, detail=f"job already finished ({job.status})")
    access.record(user.name, "job.cancel", job.id, f"{job.kind} of {job.owner}")
    events = EventLog(redis, settings.events_ttl_seconds)
    if job.kind == "sweep":
        cancelled = sweeps.cancel(store, job, events)
        if cancelled is None:
            now = store.get(job.id) or job
            raise HTTPException(status_code=409, detail=f"sweep already finished ({now.status})")
        response.status_code = 200
        return view(cancelled)
    row = store.cancel(job.id) or job
    if row.status in (JobStatus.succeeded.value, JobStatus.failed.value):  # it ended meanwhile
        raise HTTPException(status_code=409, detail=f"job already finished ({row.status})")
    events.status(row)
    response.status_code = 200 if row.status == JobStatus.cancelled.value else 202
    return view(row)
