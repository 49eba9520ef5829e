"""The store's tables: `jobs` (a sweep is a parent job whose children are jobs of their own), and
who may use the service: `users`, their API `tokens` (hashed), and the `audit` trail."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JSONDocument = JSON().with_variant(JSONB(), "postgresql")
ACTIVE_SHARED = text("shared AND status IN ('queued', 'running')")
"""The rows of the unique index on identities: one shared run per identity at a time."""
Seq = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them without a zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    """One job: its spec, where it stands, and once finished its result or error."""

    __tablename__ = "jobs"

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    owner: Mapped[str] = mapped_column(String(64), default="anonymous")
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    spec_hash: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(String(32))
    children: Mapped[list[str] | None] = mapped_column(JSONDocument)
    shared: Mapped[bool] = mapped_column(default=False)
    """While queued or running, its owner's identical submits that allow reuse answer with it."""
    visibility: Mapped[str] = mapped_column(String(8), default="private")
    """private: its owner and admins see it; lab: every user may read it, and reuse its result."""
    source_id: Mapped[str | None] = mapped_column(String(32))
    """The other user's lab-visible job whose result this one reuses (a copy of it)."""
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the fair dispatcher sent it to its queue (None: waiting in the store)."""
    flops: Mapped[float] = mapped_column(Float, default=0.0)
    """The estimated compute of the run (0 for a sweep's parent and a reused result): what
    counts against its owner's daily compute quota."""

    __table_args__ = (
        Index("ix_jobs_spec_hash_status", "spec_hash", "status"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_kind", "kind"),
        Index("ix_jobs_parent_id", "parent_id"),
        Index("ix_jobs_owner_created", "owner", "created_at"),
        Index("ix_jobs_queue_status", "queue", "status"),
        Index("ix_jobs_owner_status", "owner", "status"),
        Index("ix_jobs_owner_dispatched", "owner", "dispatched_at"),
        Index(
            "ux_jobs_active_identity",
            "owner",
            "spec_hash",
            unique=True,
            sqlite_where=ACTIVE_SHARED,
            postgresql_where=ACTIVE_SHARED,
        ),
    )


class UserRow(Base):
    """A user of the service and what they may do: `admin` (every job, tokens, the audit) or
    `member` (their own jobs and the lab's shared ones)."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    max_active_jobs: Mapped[int | None] = mapped_column(Integer)
    """Queued and running jobs this user may hold at once (None: the service's default)."""
    max_daily_flops: Mapped[float | None] = mapped_column(Float)
    """Estimated flop this user's new runs may add up to in any 24 hours (None: the default)."""


class TokenRow(Base):
    """An API token of a user: its public id and the sha256 of its secret (never the secret)."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user: Mapped[str] = mapped_column(String(64), ForeignKey("users.name"))
    digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_tokens_user", "user"),)


class AuditRow(Base):
    """Who did what to which object, and when (submits, cancels, tokens made and revoked)."""

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_audit_actor", "actor"), Index("ix_audit_action", "action"))


def newest_first(
    model: type[JobRow] | type[AuditRow], limit: int, before_seq: int | None, **equal: object
) -> Select:
    """Up to `limit` rows of `model` by descending `seq`, older than `before_seq` when given, with
    each column of `equal` equal to its value where that value is not None (a page of a list)."""
    query = select(model).order_by(model.seq.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(model.seq < before_seq)
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, column) == value)
    return query
