"""Nodes: who is running, since when, and their last heartbeat (database clock).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
        sa.Column("stopped_at", sa.BigInteger),
    )
    op.create_index("ix_runs_finished", "runs", ["finished_at"])
    leased = sa.text("lease_owner IS NOT NULL")
    op.create_index("ix_jobs_leased", "jobs", ["lease_owner"], sqlite_where=leased,
                    postgresql_where=leased)
    op.create_index("ix_runs_leased", "runs", ["lease_owner"], sqlite_where=leased,
                    postgresql_where=leased)


def downgrade() -> None:
    op.drop_index("ix_runs_leased", "runs")
    op.drop_index("ix_jobs_leased", "jobs")
    op.drop_index("ix_runs_finished", "runs")
    op.drop_table("nodes")
