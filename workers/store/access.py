"""Who may use the service: users with a role, their API tokens, and the audit trail.

A token reads `ntk_<id>_<secret>`: the id finds its row, and only the sha256 of the secret is
stored, compared in constant time (`hmac.compare_digest`). The secrets are 256 random bits, so a
plain hash suffices (no password stretching): a stolen store gives no usable token.
"""

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, Row, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from workers.store import prepared
from workers.store.models import AuditRow, TokenRow, UserRow, newest_first, utcnow

Role = Literal["admin", "member"]
PREFIX = "ntk"
ADMIN = "admin"
"""The user the first start creates, with the first admin token."""


@dataclass(frozen=True)
class User:
    """The user a request acts as."""

    name: str
    role: str
    token: str | None = field(default=None, compare=False)
    """The id of the token the request came with (rate limits count per token)."""
    max_active_jobs: int | None = field(default=None, compare=False)
    """The user's own limit on queued and running jobs (None: the service's default)."""
    max_daily_flops: float | None = field(default=None, compare=False)
    """The user's own limit on a day's estimated flop (None: the service's default)."""

    @classmethod
    def of(cls, row: UserRow | Row[Any], token: str | None = None) -> "User":
        """The user of a stored row (or of a row read with its columns), with their own limits
        (and the request's token id)."""
        return cls(row.name, row.role, token, row.max_active_jobs, row.max_daily_flops)

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """(id, secret) of a token in the `ntk_<id>_<secret>` form, or None."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not token_id or not secret:
        return None
    return token_id, secret


class AccessStore:
    """Users, tokens and the audit trail, in the job store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create_token(self, user: str, role: Role | None, label: str = "") -> tuple[TokenRow, str]:
        """A new token for `user` (created with `role`, member by default, if new; given a role,
        an existing user takes it); returns its row and the token, which is never stored."""
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = TokenRow(id=token_id, user=user, digest=digest(secret), label=label)
        with self._sessions.begin() as session:
            existing = session.get(UserRow, user)
            if existing is None:
                session.add(UserRow(name=user, role=role or "member"))
                session.flush()
            elif role is not None:
                existing.role = role
            session.add(row)
        return row, f"{PREFIX}_{token_id}_{secret}"

    def authenticate(self, token: str) -> User | None:
        """The user of a valid, unrevoked token; None otherwise."""
        parts = parse(token)
        if parts is None:
            return None
        token_id, secret = parts
        with self.engine.connect() as connection:
            found = connection.execute(prepared.TOKEN_USER, {"token_id": token_id}).first()
        if found is None:
            hmac.compare_digest(digest(secret), digest(""))  # the same work either way
            return None
        if not hmac.compare_digest(digest(secret), found.digest) or found.revoked_at is not None:
            return None
        return User.of(found, token_id)

    def revoke(self, token_id: str) -> TokenRow | None:
        """Revoke a token (once); the row as it is afterwards, None if there is no such token."""
        statement = (
            update(TokenRow)
            .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(TokenRow)
        )
        with self._sessions.begin() as session:
            row = session.scalar(statement)
            return row or session.get(TokenRow, token_id)

    def tokens(self) -> Sequence[tuple[TokenRow, str]]:
        """Every token with its user's role, oldest first."""
        query = select(TokenRow, UserRow.role).join(UserRow, UserRow.name == TokenRow.user)
        with self._sessions() as session:
            return [(row, role) for row, role in session.execute(query.order_by(TokenRow.created_at))]

    def users(self) -> Sequence[UserRow]:
        """Every user, by name."""
        with self._sessions() as session:
            return session.scalars(select(UserRow).order_by(UserRow.name)).all()

    def user(self, name: str) -> UserRow | None:
        with self._sessions() as session:
            return session.get(UserRow, name)

    def set_limits(
        self, name: str, max_active_jobs: int | None, max_daily_flops: float | None
    ) -> UserRow | None:
        """Set a user's quotas (None: the service's default); the row afterwards, None if no such user."""
        with self._sessions.begin() as session:
            row = session.get(UserRow, name)
            if row is not None:
                row.max_active_jobs, row.max_daily_flops = max_active_jobs, max_daily_flops
            return row

    def bootstrap_admin(self) -> str | None:
        """On a store without an admin: the user `admin` and its first token (returned once);
        None when an admin exists. Two API processes starting together create one."""
        with self._sessions() as session:
            if session.scalar(select(UserRow.name).where(UserRow.role == "admin").limit(1)):
                return None
        try:
            with self._sessions.begin() as session:
                session.add(UserRow(name=ADMIN, role="admin"))
        except IntegrityError:  # another process created it meanwhile (or `admin` is a member)
            return None
        _, token = self.create_token(ADMIN, None, label="created on first start")
        self.record(ADMIN, "user.bootstrap", ADMIN, "the first admin token, written to the data folder")
        return token

    def record(self, actor: str, action: str, target: str, detail: str = "") -> None:
        """Append to the audit trail."""
        entry = {"actor": actor, "action": action, "target": target, "detail": detail[:2000]}
        with self.engine.begin() as connection:
            connection.execute(prepared.INSERT_AUDIT, entry)

    def audit(
        self, *, actor: str | None, action: str | None, limit: int, before_seq: int | None
    ) -> Sequence[AuditRow]:
        """Up to `limit` audit entries, newest first, older than `before_seq` when given."""
        query = newest_first(AuditRow, limit, before_seq, actor=actor, action=action)
        with self._sessions() as session:
            return session.scalars(query).all()
