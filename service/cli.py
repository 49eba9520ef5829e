"""The `ntkdyn` command: start the stack (`run`, `api`, `worker`), and use it (`submit`,
`status`, `result`, `cancel`, `jobs`, `check`) through the Python client.

The server commands import the server and the workers inside themselves, so the client commands
(`service.client.cli`) work where only the client is installed.
"""

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError

from .client import access_cli  # noqa: F401  (registers `token` and `audit` on the client app)
from .client.cli import app as client_app
from .client.cli import fail, problems

if TYPE_CHECKING:
    from .server.settings import ServerSettings

app = typer.Typer(help="ntkdyn: optimization dynamics of over-parameterized networks, as a service.")

Host = Annotated[str | None, typer.Option(help="address to listen on [NTKDYN_HOST]")]
Port = Annotated[
    int | None, typer.Option(min=0, max=65535, help="port to listen on (0: any free one) [NTKDYN_PORT]")
]
S = TypeVar("S")


def load_settings(read: Callable[[], S]) -> S:
    """The settings `read` from the environment; a bad value stops here with one line per field."""
    try:
        return read()
    except ValidationError as error:
        raise fail([f"bad setting {line}" for line in problems(error)], code=2) from None


@contextlib.contextmanager
def needs(extra: str, command: str) -> Iterator[None]:
    """Turn a missing package of an extra into one line: which extra to install."""
    try:
        yield
    except ModuleNotFoundError as error:
        missing = error.name or "a package"
        raise fail([f"`ntkdyn {command}` needs {missing}: pip install 'ntkdyn[{extra}]'"], code=2) from None


def settings_with(host: str | None, port: int | None) -> "ServerSettings":
    from .server.settings import get_server_settings

    settings = load_settings(get_server_settings)
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    return load_settings(lambda: type(settings)(**{**settings.model_dump(), **overrides}))  # validated


@app.command()
def run(host: Host = None, port: Port = None) -> None:
    """Start the whole stack: Redis and SQLite embedded unless REDIS_URL / DATABASE_URL are set,
    one Celery worker and the API. Ctrl-C stops everything it started."""
    with needs("worker,embedded", "run"):
        from .server.launcher import run_stack

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_with(host, port)

    def announce(url: str) -> None:
        typer.secho(f"ntkdyn is up at {url}  (pages: {url}/ui, API docs: {url}/docs)", fg="green", bold=True)
        typer.echo(f"data folder: {settings.data_dir.resolve()}   logs: worker.log, redis.log")
        if settings.auth and settings.token_file.exists():
            typer.echo(f"admin token: {settings.token_file} (mode 0600; the CLI and client read it)")

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        run_stack(settings, announce)
    typer.echo("ntkdyn stopped; everything it started has exited")


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """Start the API alone, on the Redis and store of the settings (never starts them)."""
    with needs("server", "api"):
        import uvicorn

        from .server.app import create_app
        from .server.private import PRIVATE_UMASK

    settings = settings_with(host, port)
    os.umask(PRIVATE_UMASK)  # its SQLite store and the first admin token: owner-only
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


@app.command("admin-token")
def admin_token(
    label: Annotated[str, typer.Option(help="what the token is for")] = "made by ntkdyn admin-token",
) -> None:
    """Make a new token for the user `admin` directly in the store of the settings and print it:
    the way in for a deployment whose first admin token is lost (run it where DATABASE_URL
    reaches the store, e.g. `docker compose exec api ntkdyn admin-token`)."""
    from workers.settings import get_settings
    from workers.store import make_engine, migrate
    from workers.store.access import ADMIN, AccessStore

    settings = load_settings(get_settings)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    access = AccessStore(engine)
    row, token = access.create_token(ADMIN, "admin", label)
    access.record("cli", "token.create", row.id, f"for {ADMIN} (admin) {label}")
    engine.dispose()
    typer.echo(token)
    typer.echo(f"token {row.id} for {ADMIN} (admin); it is shown this once", err=True)


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues: cpu, gpu")] = "cpu",
    pool: Annotated[
        str,
        typer.Option(
            help="Celery pool: prefork, solo or threads (solo and threads check the time limit at "
            "each progress report only, and cannot kill a job that stops reporting)"
        ),
    ] = "prefork",
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Start a Celery worker alone, on the Redis and store of the settings (never starts them).
    Its concurrency is NTKDYN_WORKER_CONCURRENCY."""
    with needs("worker", "worker"):
        from workers.celery_app import QUEUES
        from workers.settings import get_settings
        from workers.store import make_engine, migrate

    os.umask(0o077)  # what the worker writes (a SQLite store's journal) is owner-only, as the API's
    unknown = set(queues.split(",")) - set(QUEUES)
    if unknown:
        raise typer.BadParameter(f"unknown queues {sorted(unknown)}; choose from {QUEUES}")
    settings = load_settings(get_settings)
    with needs("worker", "worker"):  # the science (torch, scipy, ...) comes with the tasks
        from workers.tasks import celery_app  # builds the worker's app from the settings checked above

    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    engine.dispose()
    argv = ["worker", "-Q", queues, "-P", pool, "-c", str(settings.worker_concurrency)]
    name = f"ntkdyn-{os.getpid()}-{secrets.token_hex(3)}@%h"  # never a dead worker's name, even as PID 1
    argv += ["-n", name, "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    celery_app.worker_main(argv)


@app.command("worker-health")
def worker_health() -> None:
    """Exit 0 if a worker on this host beat in the last heartbeats, else 1 with the reason: a
    container healthcheck for `ntkdyn worker` (one worker per container, named after its host)."""
    import socket

    import redis

    from workers.heartbeat import live_workers
    from workers.settings import Settings

    settings = load_settings(Settings)  # read now: a healthcheck runs once per process anyway
    host = socket.gethostname()
    try:
        client = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=5)
        names = [worker.get("name", "") for worker in live_workers(client)]
    except redis.RedisError as error:
        raise fail([f"Redis unreachable: {error}"]) from None
    if not any(name.endswith(f"@{host}") for name in names):
        raise fail([f"no worker on {host} in the last heartbeats (seen: {', '.join(names) or 'none'})"])
    typer.echo(f"a worker on {host} is alive")


app.add_typer(client_app)  # the client commands, after the server's (typer merges a nameless one)


if __name__ == "__main__":
    app()
