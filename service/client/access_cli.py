"""`ntkdyn token create|list|revoke`, `ntkdyn user list|set` and `ntkdyn audit`: an admin's
commands, through the Python client (the admin token of `make run` is picked up from the data
folder)."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from schemas.access import Role

from .cli import Token, Url, app, reports_errors
from .client import DEFAULT_URL, Client
from .console import when

tokens = typer.Typer(help="API tokens (admins): create, list and revoke them.")
app.add_typer(tokens, name="token")
users = typer.Typer(help="Users (admins): their quotas and usage.")
app.add_typer(users, name="user")


@tokens.command("create")
@reports_errors
def create(
    user: Annotated[str, typer.Option(help="the user the token acts as (created if new)")],
    role: Annotated[Role | None, typer.Option(help="admin or member (new users: member)")] = None,
    label: Annotated[str, typer.Option(help="what the token is for")] = "",
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Make a token and print it once: the service keeps only its hash."""
    with Client(url, token) as client:
        made = client.create_token(user, role, label)
    typer.echo(made.token)
    typer.echo(f"token {made.id} for {made.user} ({made.role}); it is shown this once", err=True)


@tokens.command("list")
@reports_errors
def list_tokens(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Every token: id, user, role, label, when made and revoked (never the secrets)."""
    with Client(url, token) as client:
        listed = client.tokens()
    table = Table("id", "user", "role", "label", "created", "revoked")
    for row in listed:
        revoked = when(row.revoked_at) if row.revoked_at else ""
        table.add_row(row.id, row.user, row.role, row.label, when(row.created_at), revoked)
    Console().print(table)


@tokens.command("revoke")
@reports_errors
def revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (from `ntkdyn token list`)")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Revoke a token: every later request with it gets a 401."""
    with Client(url, token) as client:
        row = client.revoke_token(token_id)
    typer.echo(f"token {row.id} of {row.user} revoked")


@users.command("list")
@reports_errors
def list_users(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Every user: role, quotas (* set for them, else the defaults) and what they use now."""
    with Client(url, token) as client:
        listed = client.users()
    table = Table("user", "role", "active jobs", "max active", "flop (24 h)", "max flop (24 h)")
    for row in listed:
        own = "*" if row.own_limits else ""
        table.add_row(
            row.name,
            row.role,
            str(row.active_jobs),
            f"{row.max_active_jobs}{own}",
            f"{row.flops_24h:.3g}",
            f"{row.max_daily_flops:.3g}{own}",
        )
    Console().print(table)


@users.command("set")
@reports_errors
def set_limits(
    user: Annotated[str, typer.Argument(help="the user")],
    max_active_jobs: Annotated[
        int | None, typer.Option(min=1, help="queued and running jobs at once")
    ] = None,
    max_daily_flops: Annotated[
        float | None, typer.Option(min=0, help="estimated flop in any 24 hours")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Set a user's quotas; a limit left out goes back to the service's default."""
    with Client(url, token) as client:
        row = client.set_limits(user, max_active_jobs, max_daily_flops)
    typer.echo(
        f"{row.name}: at most {row.max_active_jobs} active jobs, {row.max_daily_flops:.3g} flop in 24 h"
    )


@app.command()
@reports_errors
def audit(
    actor: Annotated[str | None, typer.Option(help="only what this user did")] = None,
    action: Annotated[str | None, typer.Option(help="only this action, e.g. job.cancel")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="newest entries shown")] = 50,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """(Admins) who submitted, cancelled, made or revoked what, and when: newest first."""
    with Client(url, token) as client:
        page = client.audit(actor, action, limit)
    table = Table("when", "actor", "action", "target", "detail")
    for entry in page.items:
        table.add_row(when(entry.at), entry.actor, entry.action, entry.target, entry.detail)
    Console().print(table)
