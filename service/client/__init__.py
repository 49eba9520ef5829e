"""The Python client of the ntkdyn API (`Client`, `AsyncClient`) and the client side of the
`ntkdyn` command. It needs httpx, pydantic, typer, rich, pyyaml and `schemas`: never the server's
or the workers' dependencies."""

from .client import AsyncClient, AsyncJob, Client, Job
from .events import Event
from .retry import ApiError, ClientError, Retry, Unreachable, WaitTimeout

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncJob",
    "Client",
    "ClientError",
    "Event",
    "Job",
    "Retry",
    "Unreachable",
    "WaitTimeout",
]
