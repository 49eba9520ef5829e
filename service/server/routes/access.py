"""/v1/me, /v1/tokens, /v1/users and /v1/audit: who a token acts as; for admins, tokens made,
listed and revoked, users' quotas and usage, and the audit trail."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BeforeValidator, Field

from schemas.access import (
    AuditEntry,
    AuditPage,
    LimitsRequest,
    TokenCreated,
    TokenRequest,
    TokenView,
    UserSummary,
    UserView,
)
from workers.store import JobStore
from workers.store.access import AccessStore, User
from workers.store.models import TokenRow, utcnow

from ..deps import AccessDep, AdminUser, CurrentUser, SettingsDep, StoreDep
from ..quotas import DAY, limits_of
from ..responses import ADMIN, SIGNED_IN, Answer, answers
from ..settings import ServerSettings
from .paging import decode_cursor, empty_is_none, encode_cursor

router = APIRouter(prefix="/v1", tags=["access"])
Filter = Annotated[Annotated[str, Field(max_length=64)] | None, BeforeValidator(empty_is_none)]


def token_view(row: TokenRow, role: str) -> TokenView:
    return TokenView(
        id=row.id,
        user=row.user,
        role=role,  # type: ignore[arg-type]
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.get("/me", response_model=UserView, responses=answers(*SIGNED_IN))
async def me(user: CurrentUser) -> UserView:
    """The user the request's token acts as."""
    return UserView(name=user.name, role=user.role)  # type: ignore[arg-type]


@router.post("/tokens", status_code=201, response_model=TokenCreated, responses=answers(*ADMIN, 413, 422))
def create_token(body: TokenRequest, access: AccessDep, admin: AdminUser) -> TokenCreated:
    """A new token for a user (the user is created, as a member unless `role` says otherwise).
    The token is in this answer only: the store keeps its hash."""
    row, token = access.create_token(body.user, body.role, body.label)
    role = next(role for listed, role in access.tokens() if listed.id == row.id)
    access.record(admin.name, "token.create", row.id, f"for {body.user} ({role}) {body.label}".strip())
    return TokenCreated(**token_view(row, role).model_dump(), token=token)


@router.get("/tokens", response_model=list[TokenView], responses=answers(*ADMIN))
def list_tokens(access: AccessDep, _admin: AdminUser) -> list[TokenView]:
    """Every token, oldest first, revoked ones included (never their secrets)."""
    return [token_view(row, role) for row, role in access.tokens()]


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenView,
    responses=answers(*ADMIN, Answer(404, "no token with this id"), 422),
)
def revoke_token(
    token_id: Annotated[str, Path(max_length=16)], access: AccessDep, admin: AdminUser
) -> TokenView:
    """Revoke a token: every later request with it is a 401 (revoking twice changes nothing)."""
    row = access.revoke(token_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no token with id {token_id!r}")
    access.record(admin.name, "token.revoke", token_id, f"of {row.user}")
    role = next(role for listed, role in access.tokens() if listed.id == row.id)
    return token_view(row, role)


def summary(name: str, store: JobStore, access: AccessStore, settings: ServerSettings) -> UserSummary:
    row = access.user(name)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no user {name!r}")
    limits = limits_of(settings, User.of(row))
    usage = store.usage(name, utcnow() - DAY)
    return UserSummary(
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        max_active_jobs=limits.max_active_jobs,
        max_daily_flops=limits.max_daily_flops,
        own_limits=row.max_active_jobs is not None or row.max_daily_flops is not None,
        active_jobs=usage.active,
        flops_24h=usage.flops,
    )


@router.get("/users", response_model=list[UserSummary], responses=answers(*ADMIN))
def list_users(
    store: StoreDep, access: AccessDep, settings: SettingsDep, _admin: AdminUser
) -> list[UserSummary]:
    """Every user with their quotas and what they use of them now."""
    return [summary(row.name, store, access, settings) for row in access.users()]


@router.put(
    "/users/{name}/limits",
    response_model=UserSummary,
    responses=answers(*ADMIN, Answer(404, "no user of this name"), 413, 422),
)
def set_limits(
    name: Annotated[str, Path(max_length=64)],
    body: LimitsRequest,
    store: StoreDep,
    access: AccessDep,
    settings: SettingsDep,
    admin: AdminUser,
) -> UserSummary:
    """Set a user's quotas (null: back to the service's default)."""
    if access.set_limits(name, body.max_active_jobs, body.max_daily_flops) is None:
        raise HTTPException(status_code=404, detail=f"no user {name!r}")
    detail = f"max_active_jobs={body.max_active_jobs}, max_daily_flops={body.max_daily_flops}"
    access.record(admin.name, "user.limits", name, detail)
    return summary(name, store, access, settings)


@router.get("/audit", response_model=AuditPage, responses=answers(*ADMIN, 422))
def audit(
    access: AccessDep,
    _admin: AdminUser,
    actor: Filter = None,
    action: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    """Who submitted, cancelled, made or revoked what and when, newest first."""
    rows = access.audit(actor=actor, action=action, limit=limit + 1, before_seq=decode_cursor(cursor))
    items = [
        AuditEntry(at=row.at, actor=row.actor, action=row.action, target=row.target, detail=row.detail)
        for row in rows[:limit]
    ]
    return AuditPage(
        items=items, next_cursor=encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    )
