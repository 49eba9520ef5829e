"""One run per identity: identical submits share a queued or running job. A partial unique index
on the identity of active shared jobs makes two racing submits store one row (the loser reuses
it); jobs stored before this revision are not shared, so existing duplicates do not clash.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIVE_SHARED = sa.text("shared AND status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(
        "ux_jobs_active_identity",
        "jobs",
        ["spec_hash"],
        unique=True,
        sqlite_where=ACTIVE_SHARED,
        postgresql_where=ACTIVE_SHARED,
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_active_identity", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("shared")
