"""The job store: SQLAlchemy 2.x on SQLite (WAL) or PostgreSQL, migrated by Alembic."""

from workers.store.database import make_engine, migrate
from workers.store.jobs import JobStore
from workers.store.models import JobRow

__all__ = ["JobRow", "JobStore", "make_engine", "migrate"]
