"""Fair dispatch: when each job was sent to its queue (null: it waits in the store). Jobs queued
or running before this revision were sent at submit, so they count as dispatched.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE jobs SET dispatched_at = created_at WHERE status IN ('queued', 'running')")
    op.create_index("ix_jobs_queue_status", "jobs", ["queue", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_queue_status", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
