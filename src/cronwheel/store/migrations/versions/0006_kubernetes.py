"""Runs on Kubernetes: the Job each run became and which node follows it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kube_runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("job_name", sa.String(63), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("logs", sa.String(8), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("follower", sa.String(64)),
        sa.Column("follow_until", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("outcome", sa.String(16)),
        sa.Column("reason", sa.Text),
        sa.Column("callback_url", sa.Text),
        sa.Column("callback_state", sa.String(8), nullable=False),
        sa.Column("callback_tries", sa.Integer, nullable=False),
        sa.Column("callback_due", sa.BigInteger),
    )
    op.create_index("ix_kube_runs_follow", "kube_runs", ["phase", "follow_until"])
    op.create_index("ix_kube_runs_follower", "kube_runs", ["follower", "phase"])
    op.create_index("ix_kube_runs_job", "kube_runs", ["job_id", "outcome", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_kube_runs_job", "kube_runs")
    op.drop_index("ix_kube_runs_follower", "kube_runs")
    op.drop_index("ix_kube_runs_follow", "kube_runs")
    op.drop_table("kube_runs")
