"""The API process stays light: importing and building it loads no torch."""

import subprocess
import sys

PROGRAM = """
import sys, tempfile
from fastapi.testclient import TestClient
from service.server.app import create_app
from service.cli import app
from service.server.launcher import run_stack
from service.server.settings import ServerSettings

folder = tempfile.mkdtemp()
settings = ServerSettings(data_dir=folder, redis_url=sys.argv[1], database_url=f"sqlite:///{folder}/s.db")
with TestClient(create_app(settings)) as client:
    submitted = client.post("/v1/jobs", json={"spec": {"kind": "kernel"}})
    assert submitted.status_code == 202, submitted.text
    assert client.get(submitted.headers["location"]).status_code == 200
    assert client.get("/v1/jobs").status_code == 200
heavy = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
assert not heavy, heavy
"""


def test_api_process_does_not_import_torch(redis_server) -> None:  # type: ignore[no-untyped-def]
    argv = [sys.executable, "-c", PROGRAM, redis_server.url]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
