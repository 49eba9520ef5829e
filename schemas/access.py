"""The access contract: who a token acts as, the tokens an admin makes and revokes, and the
audit trail of who did what."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import SpecModel

Role = Literal["admin", "member"]
UserName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]


class UserView(BaseModel):
    """Who the request's token acts as."""

    name: str
    role: Role


class TokenRequest(SpecModel):
    """POST /v1/tokens (admins only): a token for a user, created with the role when new."""

    user: UserName = Field(description="the user the token acts as; created if new")
    role: Role | None = Field(
        None, description="the user's role: member by default for a new user; given, it replaces theirs"
    )
    label: str = Field("", max_length=200, description="what the token is for (shown in lists)")


class TokenView(BaseModel):
    """A token as lists show it: never its secret."""

    id: str
    user: str
    role: Role
    label: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenView):
    """A new token; `token` is shown this once and stored only as a hash."""

    token: str = Field(description="send as `Authorization: Bearer <token>`")


class AuditEntry(BaseModel):
    """One thing a user did."""

    at: datetime
    actor: str
    action: str = Field(description="job.submit, job.cancel, token.create, token.revoke, user.bootstrap")
    target: str
    detail: str


class AuditPage(BaseModel):
    """Audit entries newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[AuditEntry]
    next_cursor: str | None


class LimitsRequest(SpecModel):
    """PUT /v1/users/{name}/limits (admins only): a user's quotas; null: the service's default."""

    max_active_jobs: int | None = Field(None, ge=1, le=100_000, description="queued and running jobs at once")
    max_daily_flops: float | None = Field(
        None, gt=0, le=1e21, description="estimated flop their new runs may add in any 24 hours"
    )


class UserSummary(BaseModel):
    """A user, the quotas that apply to them (their own or the defaults) and their usage."""

    name: str
    role: Role
    max_active_jobs: int
    max_daily_flops: float
    own_limits: bool = Field(description="true when either limit is set for this user")
    active_jobs: int = Field(description="queued and running now")
    flops_24h: float = Field(description="estimated flop of their runs made in the last 24 hours")
