"""A lab shares the service: every /v1 route wants a valid token, members see and cancel their
own jobs and the lab's shared ones, admins everything; tokens are made, listed and revoked by
admins, and every submit, cancel and token change is in the audit trail. Real stack, SQLite and
PostgreSQL."""

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.client import Client
from service.server.settings import ServerSettings
from workers.store import make_engine
from workers.store.access import AccessStore, User

from .conftest import Stack
from .test_api import sphere

OPEN = {"/healthz", "/readyz"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(stack: Stack, user: str, role: str | None = None) -> str:
    response = stack.client.post("/v1/tokens", json={"user": user, "role": role, "label": "test"})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def v1_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every /v1 operation the OpenAPI document publishes, path parameters
    filled with a dummy."""
    routes = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/v1"):
            path = path.replace("{job_id}", "0123456789abcdef").replace("{token_id}", "abc")
            routes += [(method.upper(), path) for method in operations]
    return routes


def test_every_v1_route_wants_a_valid_token_and_health_stays_open(stack: Stack) -> None:
    routes = v1_routes(stack.client)
    assert {path for _, path in routes} >= {"/v1/jobs", "/v1/tokens", "/v1/me", "/v1/audit"}
    revoked = make_token(stack, "leaver")
    token_id = revoked.split("_")[1]
    assert stack.client.delete(f"/v1/tokens/{token_id}").status_code == 200
    anonymous = TestClient(stack.client.app)  # shares the started app, sends no token
    for method, path in routes:
        for headers in ({}, bearer("totally-wrong"), bearer(revoked)):
            response = anonymous.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    for path in OPEN:
        assert anonymous.get(path).status_code in (200, 503)  # 503: not ready is an answer too
    schemes = stack.client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert any(scheme["scheme"] == "bearer" for scheme in schemes.values())  # /docs: Authorize


def test_members_see_and_cancel_their_own_and_read_the_labs(stack: Stack) -> None:
    alice, bob = make_token(stack, "alice"), make_token(stack, "bob")
    mine = stack.client.post(
        "/v1/jobs", json={"spec": sphere(n=64, seed=600, empirical_width=2**20)}, headers=bearer(alice)
    ).json()
    shared = stack.client.post(
        "/v1/jobs", json={"spec": sphere(seed=601), "visibility": "lab"}, headers=bearer(alice)
    ).json()
    assert (mine["owner"], mine["visibility"], shared["visibility"]) == ("alice", "private", "lab")
    assert stack.client.get(f"/v1/jobs/{mine['id']}", headers=bearer(bob)).status_code == 403
    assert stack.client.get(f"/v1/jobs/{mine['id']}/result", headers=bearer(bob)).status_code == 403
    assert stack.client.get(f"/v1/jobs/{mine['id']}/events", headers=bearer(bob)).status_code == 403
    assert stack.client.delete(f"/v1/jobs/{mine['id']}", headers=bearer(bob)).status_code == 403
    assert stack.client.get(f"/v1/jobs/{shared['id']}", headers=bearer(bob)).status_code == 200
    assert stack.client.delete(f"/v1/jobs/{shared['id']}", headers=bearer(bob)).status_code == 403
    seen_by_bob = {job["id"] for job in stack.client.get("/v1/jobs", headers=bearer(bob)).json()["items"]}
    assert shared["id"] in seen_by_bob and mine["id"] not in seen_by_bob
    assert stack.client.get("/v1/tokens", headers=bearer(bob)).status_code == 403
    assert stack.client.get("/v1/audit", headers=bearer(bob)).status_code == 403
    assert stack.client.delete(f"/v1/jobs/{mine['id']}", headers=bearer(alice)).status_code in (200, 202)
    assert stack.wait(shared["id"])["status"] == "succeeded"
    # the admin sees and may cancel everything
    every = {job["id"] for job in stack.client.get("/v1/jobs", params={"owner": "alice"}).json()["items"]}
    assert {mine["id"], shared["id"]} <= every
    assert stack.client.get("/v1/me", headers=bearer(bob)).json() == {"name": "bob", "role": "member"}


def test_a_lab_result_answers_another_user_with_a_copy_of_their_own(stack: Stack) -> None:
    alice, bob, carol = make_token(stack, "alice"), make_token(stack, "bob"), make_token(stack, "carol")
    private = stack.client.post("/v1/jobs", json={"spec": sphere(seed=610)}, headers=bearer(alice)).json()
    shared = stack.client.post(
        "/v1/jobs", json={"spec": sphere(seed=611), "visibility": "lab"}, headers=bearer(alice)
    ).json()
    for job in (private, shared):
        assert stack.wait(job["id"])["status"] == "succeeded"
    again = stack.client.post("/v1/jobs", json={"spec": sphere(seed=610)}, headers=bearer(bob))
    assert again.status_code == 202 and not again.json()["cached"]  # a private result: his own run
    reused = stack.client.post("/v1/jobs", json={"spec": sphere(seed=611)}, headers=bearer(carol))
    copy = reused.json()
    assert reused.status_code == 200 and copy["cached"] and copy["owner"] == "carol"
    assert copy["source_id"] == shared["id"] and copy["id"] != shared["id"]
    result = stack.client.get(f"/v1/jobs/{copy['id']}/result", headers=bearer(carol)).json()
    assert result == stack.client.get(f"/v1/jobs/{shared['id']}/result").json()
    stack.wait(again.json()["id"])


def test_tokens_and_the_audit_through_the_cli_and_the_client(stack: Stack, served: str) -> None:
    def ntkdyn(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "service.cli", *args, "--url", served]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    made = ntkdyn("token", "create", "--user", "dora", "--label", "notebook")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with Client(served, token) as dora:
        assert dora.me().name == "dora"
        job = dora.submit(sphere(seed=620))
        assert job.view.owner == "dora"
    listed = ntkdyn("token", "list")
    assert listed.returncode == 0 and "dora" in listed.stdout and token not in listed.stdout
    token_id = token.split("_")[1]
    assert ntkdyn("token", "revoke", token_id).returncode == 0
    with Client(served, token) as dora, pytest.raises(Exception, match="401"):
        dora.me()
    with Client(served) as admin:  # NTKDYN_TOKEN: the first admin's
        entries = admin.audit(limit=500).items
    actions = {(entry.actor, entry.action, entry.target) for entry in entries}
    assert {("admin", "token.create", token_id), ("dora", "job.submit", job.id)} <= actions
    assert ("admin", "token.revoke", token_id) in actions
    assert ntkdyn("audit", "--actor", "dora").returncode == 0


def test_listening_beyond_loopback_without_auth_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match=r"refusing to listen on 0\.0\.0\.0"):
        ServerSettings(host="0.0.0.0", auth=False)
    assert ServerSettings(host="127.0.0.1", auth=False).auth is False
    assert ServerSettings(host="0.0.0.0").auth is True
    refused = subprocess.run(
        [sys.executable, "-m", "service.cli", "api", "--host", "0.0.0.0"],
        env={**os.environ, "NTKDYN_AUTH": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "refusing to listen on 0.0.0.0" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_admin_token_can_always_be_made_where_the_store_is_reached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A deployment whose first token is lost: `ntkdyn admin-token` makes one in the store."""
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    made = subprocess.run(
        [sys.executable, "-m", "service.cli", "admin-token"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    assert AccessStore(engine).authenticate(made.stdout.strip()) == User("admin", "admin")
    engine.dispose()
