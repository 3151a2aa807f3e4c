"""Secrets sealed under the server key (Sentinel appKeys), and the Sentinel dialect's numeric
ids: a jobId for each job it created (with the fields Sentinel keeps beside a job) and a
taskId for each run it has shown.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"  # after the worker types
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_secrets",
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("app", "kind", name="pk_app_secrets"),
    )
    op.create_table(
        "sentinel_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("department", sa.String(255), nullable=False),
        sa.Column("biz_groups", sa.Text, nullable=False),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,  # a jobId is never given twice, even after a drop
    )
    op.create_index("ix_sentinel_jobs_app", "sentinel_jobs", ["app", "department"])
    op.create_table(
        "sentinel_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False, unique=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sentinel_tasks_job", "sentinel_tasks", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_sentinel_tasks_job", "sentinel_tasks")
    op.drop_table("sentinel_tasks")
    op.drop_index("ix_sentinel_jobs_app", "sentinel_jobs")
    op.drop_table("sentinel_jobs")
    op.drop_table("app_secrets")
