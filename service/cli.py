"""The `ntkdyn` command: start the stack (`run`, `api`, `worker`), and use it (`submit`,
`status`, `result`, `cancel`, `jobs`, `check`) through the Python client."""

import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from schemas import JobStatus
from workers.settings import Settings, get_settings

from .checks import Case, Outcome, evaluate, load_suite, read_spec
from .client import DEFAULT_URL, AsyncClient, Client, ClientError
from .console import JobProgress, check_table, job_table, jobs_table, styled
from .reports import csv_table, junit, write_csv

app = typer.Typer(help="ntkdyn: optimization dynamics of over-parameterized networks, as a service.")

Host = Annotated[str | None, typer.Option(help="address to listen on [NTKDYN_HOST]")]
Port = Annotated[
    int | None, typer.Option(min=0, max=65535, help="port to listen on (0: any free one) [NTKDYN_PORT]")
]
Url = Annotated[str, typer.Option(envvar="NTKDYN_URL", help="address of the ntkdyn API")]
Token = Annotated[str | None, typer.Option(envvar="NTKDYN_TOKEN", help="bearer token", show_default=False)]
JobId = Annotated[str, typer.Argument(help="the job's id")]
P = ParamSpec("P")
R = TypeVar("R")


def problems(error: ValidationError) -> list[str]:
    """One `where: what` line per problem of a validation error."""
    return [
        f"{'.'.join(str(part) for part in problem['loc']) or 'value'}: {problem['msg']}"
        for problem in error.errors()
    ]


def fail(lines: list[str], code: int = 1) -> typer.Exit:
    """Print the error lines in red on stderr; the exit to raise."""
    for line in lines:
        typer.secho(f"error: {line}", fg="red", err=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment; a bad value stops here with one line per field."""
    try:
        return get_settings()
    except ValidationError as error:
        raise fail([f"bad setting {line}" for line in problems(error)], code=2) from None


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A client command whose expected failures (the service's answer, an unreachable service,
    an unreadable file) end it with one clear line and exit status 1, never a traceback."""

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ValidationError as error:
            raise fail(problems(error)) from None
        except (ClientError, ValueError, OSError) as error:
            raise fail([str(error)]) from None

    return guarded


def stdout() -> Console:
    return Console()


def stderr() -> Console:
    return Console(stderr=True)


def settings_with(host: str | None, port: int | None) -> Settings:
    settings = load_settings()
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    return settings.model_copy(update=overrides)


@app.command()
def run(host: Host = None, port: Port = None) -> None:
    """Start the whole stack: Redis and SQLite embedded unless REDIS_URL / DATABASE_URL are set,
    one Celery worker and the API. Ctrl-C stops everything it started."""
    from .server.launcher import run_stack

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_with(host, port)

    def announce(url: str) -> None:
        typer.secho(f"ntkdyn is up at {url}  (API docs: {url}/docs)", fg="green", bold=True)
        typer.echo(f"data folder: {settings.data_dir.resolve()}   logs: worker.log, redis.log")

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        run_stack(settings, announce)
    typer.echo("ntkdyn stopped; everything it started has exited")


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """Start the API alone, on the Redis and store of the settings (never starts them)."""
    from .server.app import create_app

    settings = settings_with(host, port)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues: cpu, gpu")] = "cpu",
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, solo or threads")] = "prefork",
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Start a Celery worker alone, on the Redis and store of the settings (never starts them).
    Its concurrency is NTKDYN_WORKER_CONCURRENCY."""
    from workers.celery_app import QUEUES
    from workers.store import make_engine, migrate

    unknown = set(queues.split(",")) - set(QUEUES)
    if unknown:
        raise typer.BadParameter(f"unknown queues {sorted(unknown)}; choose from {QUEUES}")
    settings = load_settings()
    from workers.tasks import celery_app  # builds the worker's app from the settings checked above

    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    engine.dispose()
    argv = ["worker", "-Q", queues, "-P", pool, "-c", str(settings.worker_concurrency)]
    argv += ["-n", f"ntkdyn-{os.getpid()}@%h", "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    celery_app.worker_main(argv)


@app.command()
@reports_errors
def submit(
    spec_file: Annotated[Path, typer.Argument(help="the spec, JSON or YAML (or a request body holding it)")],
    wait: Annotated[bool, typer.Option(help="follow the job to its end with a progress bar")] = False,
    reuse: Annotated[bool, typer.Option(help="let an identical finished job answer")] = True,
    timeout: Annotated[
        float | None, typer.Option(help="with --wait: give up after this many seconds")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Submit a job. Prints its id; with --wait, shows its progress and ends with its status
    (exit status 1 unless it succeeded)."""
    spec = read_spec(spec_file)
    with Client(url, token) as client:
        job = client.submit(spec, reuse=reuse)
        if not wait:
            typer.echo(job.id)
            typer.echo(f"{job.status.value}{' (cached)' if job.view.cached else ''}", err=True)
            return
        with JobProgress(stderr(), job.id) as bar:
            view = job.wait(timeout, on_progress=bar)
    stdout().print(f"job {view.id} {styled(view.status)}")
    if view.status is not JobStatus.succeeded:
        raise fail([view.error or view.message])


@app.command()
@reports_errors
def status(job_id: JobId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Show a job: status, progress, times and error."""
    with Client(url, token) as client:
        stdout().print(job_table(client.view(job_id)))


class Format(StrEnum):
    json = "json"
    csv = "csv"


@app.command()
@reports_errors
def result(
    job_id: JobId,
    shape: Annotated[
        Format,
        typer.Option(
            "--format", help="json: the document; csv: trajectories as tidy rows, or a sweep's table"
        ),
    ] = Format.json,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here instead of stdout")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Write a succeeded job's result: the JSON document, or as CSV a train job's trajectories
    (tidy rows: run, replicate, step, metric, value) or a sweep's table (a row per grid point)."""
    with Client(url, token) as client:
        document = client.job(job_id).result()
    table = csv_table(document) if shape is Format.csv else None  # before the file opens
    with open(output, "w", newline="") if output else contextlib.nullcontext(sys.stdout) as stream:
        if table is not None:
            write_csv(*table, stream)
        else:
            json.dump(document, stream, indent=2)
            stream.write("\n")


@app.command()
@reports_errors
def cancel(job_id: JobId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Cancel a job: a queued one ends at once, a running one at its next progress check."""
    with Client(url, token) as client:
        view = client.job(job_id).cancel()
    stdout().print(f"job {view.id} {styled(view.status)}: {view.message}")


@app.command()
@reports_errors
def jobs(
    status: Annotated[JobStatus | None, typer.Option(help="only jobs with this status")] = None,
    kind: Annotated[str | None, typer.Option(help="only jobs of this kind")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 20,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """List jobs, newest first."""
    with Client(url, token) as client:
        found = client.jobs(status=status.value if status else None, kind=kind, limit=limit)
    stdout().print(jobs_table(job.view for job in found))


async def run_case(client: AsyncClient, case: Case, timeout: float) -> list[Outcome]:
    """Submit the case's spec, wait for its job and check its result."""
    try:
        job = await client.submit(case.spec)
        view = await job.wait(timeout)
        if view.status is not JobStatus.succeeded:
            return evaluate(case, None, f"job {view.id} {view.status.value}: {view.error or view.message}")
        return evaluate(case, await job.result())
    except ClientError as error:
        return evaluate(case, None, str(error))


async def run_cases(cases: list[Case], url: str, token: str | None, timeout: float) -> list[Outcome]:
    """All cases at once; the outcomes in the order of the cases."""
    async with AsyncClient(url, token) as client:
        per_case = await asyncio.gather(*(run_case(client, case, timeout) for case in cases))
    return [outcome for outcomes in per_case for outcome in outcomes]


@app.command()
@reports_errors
def check(
    suite_file: Annotated[Path, typer.Argument(help="the check suite (YAML)")],
    junit_file: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
    timeout: Annotated[float, typer.Option(help="seconds the whole suite may take")] = 1800,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Run a check suite: submit every case, wait, compare each expected field of the results
    and print a table. Exit status 1 when any expectation fails or any job does not succeed."""
    suite = load_suite(suite_file)
    started = time.monotonic()
    with stderr().status(f"{len(suite.cases)} cases of {suite.name} running on {url}"):
        outcomes = asyncio.run(run_cases(suite.cases, url, token, timeout))
    seconds = time.monotonic() - started
    stdout().print(check_table(outcomes))
    if junit_file is not None:
        junit(suite.name, outcomes, seconds).write(junit_file, encoding="utf-8", xml_declaration=True)
    failed = sum(not outcome.passed for outcome in outcomes)
    stdout().print(f"{len(outcomes) - failed} passed, {failed} failed in {seconds:.1f} s")
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
