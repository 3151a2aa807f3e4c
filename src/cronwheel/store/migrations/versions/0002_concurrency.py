"""Per-job concurrency policy; an index on each job's live runs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("concurrency", sa.String(16), nullable=False, server_default="allow")
        )
    live = sa.text("due_at IS NOT NULL")
    op.create_index("ix_runs_live_by_job", "runs", ["job_id"], sqlite_where=live,
                    postgresql_where=live)


def downgrade() -> None:
    op.drop_index("ix_runs_live_by_job", "runs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("concurrency")
