"""The API's docs: /docs and /redoc load nothing from elsewhere, every route documents each status
it answers (errors with the model of their body), and every kind has a request example that
validates and runs on a real stack."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas import ConvexResult, JobRequest, KernelResult, LandscapeResult, OdeResult, TrainResult
from schemas.examples import SPEC_EXAMPLES
from schemas.sweep import SweepResult
from service.server.app import create_app
from service.server.settings import ServerSettings

from .conftest import Stack

A_JOB = {401, 403, 404, 422, 503}
ADMIN = {401, 403, 503}
ANSWERS: dict[tuple[str, str], set[int]] = {
    ("POST", "/v1/jobs"): {200, 202, 401, 413, 422, 429, 503},
    ("GET", "/v1/jobs"): {200, 401, 422, 503},
    ("GET", "/v1/jobs/{job_id}"): {200} | A_JOB,
    ("DELETE", "/v1/jobs/{job_id}"): {200, 202, 409} | A_JOB,
    ("GET", "/v1/jobs/{job_id}/result"): {200, 409} | A_JOB,
    ("GET", "/v1/jobs/{job_id}/figures"): {200, 409} | A_JOB,
    ("GET", "/v1/jobs/{job_id}/events"): {200} | A_JOB,
    ("GET", "/v1/me"): {200, 401, 503},
    ("POST", "/v1/tokens"): {201, 413, 422} | ADMIN,
    ("GET", "/v1/tokens"): {200} | ADMIN,
    ("DELETE", "/v1/tokens/{token_id}"): {200, 404, 422} | ADMIN,
    ("GET", "/v1/users"): {200} | ADMIN,
    ("PUT", "/v1/users/{name}/limits"): {200, 404, 413, 422} | ADMIN,
    ("GET", "/v1/audit"): {200, 422} | ADMIN,
    ("GET", "/healthz"): {200},
    ("GET", "/readyz"): {200, 503},
    ("GET", "/metrics"): {200} | ADMIN,
}
"""Every operation of the API and each status it answers (a new route is added here too)."""
KINDS = {"kernel", "train", "ode", "landscape", "convex", "sweep"}
URL = re.compile(r"""https?://[^\s"'<>)]+""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app without its stack (not started): enough for its pages and its OpenAPI."""
    folder = tmp_path_factory.mktemp("docs")
    settings = ServerSettings(data_dir=folder, database_url=f"sqlite:///{folder / 'store.db'}")
    yield TestClient(create_app(settings))


@pytest.fixture(scope="module")
def operations(client: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    document = client.get("/openapi.json").json()
    return {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def test_every_operation_documents_each_status_it_answers(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    documented = {key: {int(status) for status in op["responses"]} for key, op in operations.items()}
    assert documented == ANSWERS


def test_every_error_has_the_model_of_its_body(operations: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (method, path), operation in operations.items():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                where = f"{method} {path} {status}"
                assert response["description"], where
                assert response["content"]["application/json"]["schema"]["$ref"], where


def test_errors_document_the_bodies_the_api_sends(operations: dict[tuple[str, str], dict[str, Any]]) -> None:
    def model(method: str, path: str, status: int) -> str:
        return operations[method, path]["responses"][str(status)]["content"]["application/json"]["schema"][
            "$ref"
        ]

    assert model("POST", "/v1/jobs", 422).endswith("/Invalid")
    assert model("POST", "/v1/jobs", 429).endswith("/Problem")
    assert model("GET", "/v1/jobs/{job_id}/result", 409).endswith("/NoResult")
    assert model("GET", "/readyz", 503).endswith("/Readiness")
    headers = operations["POST", "/v1/jobs"]["responses"]
    assert "Retry-After" in headers["429"]["headers"] and "WWW-Authenticate" in headers["401"]["headers"]


def test_a_submit_shows_a_valid_example_of_every_kind(
    operations: dict[tuple[str, str], dict[str, Any]],
) -> None:
    examples = operations["POST", "/v1/jobs"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(SPEC_EXAMPLES) == KINDS
    for kind, example in examples.items():
        assert example["summary"].startswith(kind)
        assert JobRequest.model_validate(example["value"]).spec.kind == kind


def test_the_result_shows_the_model_of_every_kind(operations: dict[tuple[str, str], dict[str, Any]]) -> None:
    succeeded = operations["GET", "/v1/jobs/{job_id}/result"]["responses"]["200"]
    result = succeeded["content"]["application/json"]["schema"]
    models = (KernelResult, TrainResult, LandscapeResult, OdeResult, ConvexResult, SweepResult)
    assert {ref["$ref"] for ref in result["oneOf"]} == {f"#/components/schemas/{m.__name__}" for m in models}
    assert result["discriminator"]["propertyName"] == "kind"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_server(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert URL.findall(html.text) == []
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", html.text)
    assert len(assets) >= 2
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    scripts = [client.get(asset).text for asset in assets if Path(asset).suffix == ".js"]
    assert scripts and not any("cdn.redoc.ly" in script for script in scripts)


def test_every_example_runs(stack: Stack) -> None:
    submitted = {kind: stack.submit(**example["value"]) for kind, example in SPEC_EXAMPLES.items()}
    for kind, job in submitted.items():
        assert job["kind"] == kind
        finished = stack.wait(job["id"], timeout=120)
        assert finished["status"] == "succeeded", (kind, finished["error"])
