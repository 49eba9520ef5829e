"""`GET /v1/jobs/{id}/figures`, what a job's page draws, against a live stack: a succeeded job's
figures as Plotly JSON (and a sweep's table of points beside them), 409 before it has a result,
404 for an unknown id."""

import json

from service.figures import figures
from service.tables import tables

from .conftest import Stack
from .results import SPECS
from .test_api import slow

SWEEP = {
    "kind": "sweep",
    "base": {"kind": "kernel", "dataset": {"name": "sphere", "n": 8, "d": 3, "seed": 0}},
    "axes": [{"path": "dataset.n", "values": [8, 16]}, {"path": "dataset.seed", "values": [1, 2]}],
    "metrics": [{"name": "lambda_min", "path": "spectrum.lambda_min"}],
}


def test_a_succeeded_job_answers_its_figures_and_no_table(stack: Stack) -> None:
    job = stack.wait(stack.submit(SPECS["kernel"])["id"])
    assert job["status"] == "succeeded", job
    answer = stack.client.get(f"/v1/jobs/{job['id']}/figures")
    assert answer.status_code == 200
    shown = json.loads(answer.text)  # strict JSON: no NaN
    document = stack.client.get(f"/v1/jobs/{job['id']}/result").json()
    assert [(one["name"], one["title"]) for one in shown["figures"]] == [
        (figure.name, figure.title) for figure in figures(document)
    ]
    spectrum = shown["figures"][0]["figure"]
    assert spectrum["layout"]["yaxis"]["type"] == "log" and spectrum["layout"]["meta"] == {"name": "spectrum"}
    assert [trace["name"] for trace in spectrum["data"]] == ["eigenvalue"]
    assert spectrum["data"][0]["y"] == document["spectrum"]["eigenvalues"]
    assert shown["tables"] == []


def test_a_sweep_answers_its_figures_and_its_table_of_points(stack: Stack) -> None:
    job = stack.wait(stack.submit(SWEEP)["id"], timeout=120)
    assert job["status"] == "succeeded", job
    shown = stack.client.get(f"/v1/jobs/{job['id']}/figures").json()
    names = [one["name"] for one in shown["figures"]]
    assert names == ["lambda_min-vs-dataset.n", "lambda_min-vs-dataset.seed"]
    by_n = shown["figures"][0]["figure"]
    assert [trace["name"] for trace in by_n["data"]] == ["dataset.seed=1", "dataset.seed=2"]
    (table,) = shown["tables"]
    points = tables(stack.client.get(f"/v1/jobs/{job['id']}/result").json())["points"]
    assert (table["name"], table["header"], table["rows"]) == ("points", points.header, list(points.rows()))
    assert table["header"][:2] == ["baseline", "dataset.n"] and len(table["rows"]) == 4


def test_no_figures_before_a_result_nor_for_an_unknown_job(stack: Stack) -> None:
    job = stack.submit(slow(seed=9200))
    answer = stack.client.get(f"/v1/jobs/{job['id']}/figures")
    assert answer.status_code == 409
    assert answer.json()["detail"]["status"] in ("queued", "running")
    stack.client.delete(f"/v1/jobs/{job['id']}")
    unknown = stack.client.get("/v1/jobs/0123456789abcdef/figures")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no job with id '0123456789abcdef'"


def test_the_figures_route_is_documented(stack: Stack) -> None:
    schema = stack.client.get("/openapi.json").json()
    answer = schema["paths"]["/v1/jobs/{job_id}/figures"]["get"]
    assert answer["tags"] == ["jobs"] and "409" in answer["responses"]
    assert set(schema["components"]["schemas"]["Shown"]["properties"]) == {"figures", "tables"}
