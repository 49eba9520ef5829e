"""A notebook user's view of results: `GET /v1/jobs/{id}/result?format=csv|parquet|npz`, and the
Python client's `job.to_frame()` and `job.arrays()`, against a live stack."""

import csv
import io
import runpy
from pathlib import Path

import numpy as np
import pytest

from service.client import Client

from .conftest import Stack
from .results import SPECS
from .test_api import slow

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def finished(stack: Stack) -> dict[str, str]:
    """A succeeded kernel job (its matrix asked for) and a succeeded train job, by kind."""
    ids = {kind: stack.submit(SPECS[kind])["id"] for kind in ("kernel", "train")}
    for job_id in ids.values():
        assert stack.wait(job_id)["status"] == "succeeded"
    return ids


def test_a_kernel_result_as_csv_parquet_and_npz(stack: Stack, finished: dict[str, str]) -> None:
    path = f"/v1/jobs/{finished['kernel']}/result"
    document = stack.client.get(path).json()

    as_csv = stack.client.get(path, params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert f'filename="{finished["kernel"]}-spectrum.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [float(row["eigenvalue"]) for row in rows] == document["spectrum"]["eigenvalues"]
    assert [float(row["cumulative_energy"]) for row in rows] == document["cumulative_energy"]

    widths = stack.client.get(path, params={"format": "parquet", "table": "widths"})
    assert widths.status_code == 200 and widths.content[:4] == b"PAR1"

    as_npz = stack.client.get(path, params={"format": "npz"})
    assert as_npz.status_code == 200
    loaded = np.load(io.BytesIO(as_npz.content), allow_pickle=False)
    matrix = loaded["matrix"]
    assert matrix.shape == (document["n"], document["n"])
    assert np.sort(np.linalg.eigvalsh(matrix))[::-1] == pytest.approx(
        document["spectrum"]["eigenvalues"], rel=1e-10
    )
    assert loaded["spectrum.eigenvalue"].tolist() == document["spectrum"]["eigenvalues"]


def test_the_client_gives_data_frames_and_arrays(stack: Stack, served: str, finished: dict[str, str]) -> None:
    with Client(served) as client:
        train = client.job(finished["train"])
        document = train.result()
        frame = train.to_frame()
        runs = train.to_frame("runs")
        kernel = client.job(finished["kernel"]).arrays()
    assert list(frame.columns[:5]) == ["run", "optimizer", "replicate", "seed", "step"]
    heavy = frame[(frame["run"] == "heavy_ball") & (frame["replicate"] == 1)]
    record = document["optimizers"][1]["runs"][1]["record"]
    assert heavy["step"].tolist() == [int(step) for step in record["step"]]
    assert heavy["train_loss"].tolist() == record["train_loss"]
    assert len(runs) == sum(len(optimizer["runs"]) for optimizer in document["optimizers"])
    assert runs["final_loss"].tolist() == [r["final_loss"] for o in document["optimizers"] for r in o["runs"]]
    assert kernel["matrix"].shape == (SPECS["kernel"]["dataset"]["n"],) * 2


def test_bad_format_requests_are_422_naming_the_query_field(stack: Stack, finished: dict[str, str]) -> None:
    path = f"/v1/jobs/{finished['train']}/result"
    answers = {
        "format": stack.client.get(path, params={"format": "xlsx"}),
        "unknown table": stack.client.get(path, params={"format": "csv", "table": "spectrum"}),
        "table with json": stack.client.get(path, params={"table": "runs"}),
        "table with npz": stack.client.get(path, params={"format": "npz", "table": "runs"}),
    }
    for what, answer in answers.items():
        assert answer.status_code == 422, what
        (problem,) = answer.json()["detail"]
        assert problem["loc"] == ["query", "format" if what == "format" else "table"], what
    assert "its tables: trajectories, runs, predicted" in answers["unknown table"].json()["detail"][0]["msg"]


def test_an_unfinished_job_has_no_file(stack: Stack) -> None:
    job = stack.submit(slow(seed=9100))
    answer = stack.client.get(f"/v1/jobs/{job['id']}/result", params={"format": "csv"})
    assert answer.status_code == 409
    stack.client.delete(f"/v1/jobs/{job['id']}")


def test_the_notebook_example_runs(served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTKDYN_URL", served)
    monkeypatch.setenv("NOTEBOOK_FIGURE", str(tmp_path / "loss.png"))
    cells = runpy.run_path(str(EXAMPLES / "notebook.py"))
    frame, runs = cells["frame"], cells["runs"]
    assert set(frame["optimizer"]) == {"gd", "heavy_ball"} and set(frame["replicate"]) == {0, 1}
    assert cells["arrays"]["trajectories.train_loss"].shape == (len(frame),)
    linear = runs[runs["verdict"] == "linear"]
    assert len(linear) >= 2  # both methods converge linearly on this wide net
    # the rate refitted in the notebook on the last half agrees with the service's tail fit
    assert np.allclose(linear["refitted"], linear["rate"], rtol=0.05)
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
