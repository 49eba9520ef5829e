"""Quotas: each job's estimated compute, per-user limits on active jobs and daily compute (null:
the service's defaults), and an index for a user's recent jobs.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("flops", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("max_active_jobs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_daily_flops", sa.Float(), nullable=True))
    op.create_index("ix_jobs_owner_created", "jobs", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_created", table_name="jobs")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("max_daily_flops")
        batch.drop_column("max_active_jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("flops")
