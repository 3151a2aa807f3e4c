"""Runs listed by namespace, newest first, on an index: (namespace, id).

The console lists runs across jobs of the namespaces a caller's app claims; without this
index a namespace filter walked the primary key past every other app's runs. Namespaces are
compared in byte order on both backends (PostgreSQL's "C" collation, as ix_jobs_listing), so
a prefix claim (`team-*`) is one range of it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"  # after the jobs' listing index
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_runs_listing ON runs (namespace COLLATE "C", id)')
    else:
        op.execute("CREATE INDEX ix_runs_listing ON runs (namespace, id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_runs_listing")
