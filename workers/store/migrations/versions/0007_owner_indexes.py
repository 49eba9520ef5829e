"""Indexes that keep a submit's and a dispatch pass's reads of one user bounded by what the user
has active, not by their whole history: (owner, status) for the count of their queued and running
jobs, (owner, dispatched_at) for when they were last served (a MAX read from the index's end).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_owner_status", "jobs", ["owner", "status"])
    op.create_index("ix_jobs_owner_dispatched", "jobs", ["owner", "dispatched_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_dispatched", table_name="jobs")
    op.drop_index("ix_jobs_owner_status", table_name="jobs")
