"""Identity: users with a role, their API tokens (sha256 of the secret only), an audit trail;
each job's visibility and, for a reused lab result, its source. One run per identity becomes one
per owner and identity, since a private job answers its owner only.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTIVE_SHARED = sa.text("shared AND status IN ('queued', 'running')")
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("user", sa.String(64), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_tokens_user", "tokens", ["user"])
    op.create_table(
        "audit",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_actor", "audit", ["actor"])
    op.create_index("ix_audit_action", "audit", ["action"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("visibility", sa.String(8), nullable=False, server_default="private"))
        batch.add_column(sa.Column("source_id", sa.String(32), nullable=True))
    op.drop_index("ux_jobs_active_identity", table_name="jobs")
    op.create_index(
        "ux_jobs_active_identity",
        "jobs",
        ["owner", "spec_hash"],
        unique=True,
        sqlite_where=ACTIVE_SHARED,
        postgresql_where=ACTIVE_SHARED,
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_active_identity", table_name="jobs")
    op.create_index(
        "ux_jobs_active_identity",
        "jobs",
        ["spec_hash"],
        unique=True,
        sqlite_where=ACTIVE_SHARED,
        postgresql_where=ACTIVE_SHARED,
    )
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("source_id")
        batch.drop_column("visibility")
    op.drop_table("audit")
    op.drop_table("tokens")
    op.drop_table("users")
