"""The client side of the `ntkdyn` command: `submit`, `status`, `result`, `plot`, `cancel`, `jobs`,
`top` and `check`, through the Python client. Nothing here needs the server or the workers installed."""

import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live

from schemas import JobStatus
from schemas.jobs import Visibility
from service.figures import PlotExtraMissing, figures, image_format, render, select

from .checks import Case, Outcome, evaluate, load_suite, read_spec
from .client import DEFAULT_URL, AsyncClient, Client
from .console import JobProgress, check_table, job_table, jobs_table, styled, top_view
from .junit import junit
from .retry import ClientError

app = typer.Typer()
"""The client commands; `service.cli` serves them beside the server's."""

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


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A client command whose expected failures (the service's answer, an unreachable service,
    an unreadable file) end it with one clear line and exit status 1, never a traceback."""

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ValidationError as error:
            raise fail(problems(error)) from None
        except (ClientError, ValueError, OSError, PlotExtraMissing) as error:
            raise fail([str(error)]) from None

    return guarded


def stdout() -> Console:
    return Console()


def stderr() -> Console:
    return Console(stderr=True)


@app.command()
@reports_errors
def submit(
    spec_file: Annotated[Path, typer.Argument(help="the spec, JSON or YAML (or a request body holding it)")],
    wait: Annotated[bool, typer.Option(help="follow the job to its end with a progress bar")] = False,
    reuse: Annotated[
        bool, typer.Option(help="let an identical succeeded, queued or running job answer")
    ] = True,
    visibility: Annotated[
        Visibility, typer.Option(help="private: you and admins see it; lab: every user may read it")
    ] = "private",
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
        job = client.submit(spec, reuse=reuse, visibility=visibility)
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
    parquet = "parquet"
    npz = "npz"


@app.command()
@reports_errors
def result(
    job_id: JobId,
    shape: Annotated[
        Format,
        typer.Option(
            "--format",
            help="json: the document; csv, parquet: one tidy table; npz: every table's columns and "
            "the result's arrays",
        ),
    ] = Format.json,
    table: Annotated[
        str | None, typer.Option(help="csv, parquet: which table (default: the kind's first)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here instead of stdout")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Write a succeeded job's result: the JSON document, one of its tidy tables as CSV or Parquet
    (a train job's `trajectories`: a row per run, replicate and recorded step; a kernel job's
    `spectrum`; a sweep's `points`), or all of them as npz."""
    if shape in (Format.parquet, Format.npz) and output is None and sys.stdout.isatty():
        raise fail([f"{shape} is binary: write it to a file with -o FILE"])
    with Client(url, token) as client:
        job = client.job(job_id)
        if shape is Format.json:
            content = (json.dumps(job.result(), indent=2) + "\n").encode()
        else:
            content = job.download(shape.value, table)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    else:
        output.write_bytes(content)


@app.command()
@reports_errors
def plot(
    job_id: JobId,
    output: Annotated[Path, typer.Option("--output", "-o", help="the image: a .png or .svg file")],
    names: Annotated[
        list[str] | None,
        typer.Option("--figure", help="draw this figure (repeat for several; default: all of them)"),
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    r"""Draw a succeeded job's figures (those of its page) into one PNG or SVG image, here,
    without a browser: needs the `plot` extra, pip install 'ntkdyn\[plot]'."""
    image_format(output)
    with Client(url, token) as client:
        document = client.job(job_id).result()
    render(select(figures(document), names or []), output)


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


@app.command()
@reports_errors
def top(
    every: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 2.0,
    once: Annotated[bool, typer.Option(help="print one view and exit")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Queues, workers and running jobs, refreshed until Ctrl-C (an admin sees every owner's)."""
    with Client(url, token) as client:

        def view() -> Group:
            active = [
                job.view for status in ("running", "queued") for job in client.jobs(status=status, limit=200)
            ]
            return top_view(client.readiness(), active, time.time())

        if once:
            stdout().print(view())
            return
        with Live(view(), console=stdout(), auto_refresh=False) as live:
            while True:
                time.sleep(every)
                live.update(view(), refresh=True)


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
