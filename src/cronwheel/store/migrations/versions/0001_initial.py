"""Jobs, runs and attempts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

US = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("payload", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("retry", sa.Text, nullable=False),
        sa.Column("misfire", sa.String(16), nullable=False),
        sa.Column("misfire_grace_us", US, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("next_fire_at", US),
        sa.Column("remaining_us", US),
        sa.Column("last_fire_at", US),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", US),
        sa.Column("created_at", US, nullable=False),
        sa.Column("updated_at", US, nullable=False),
        sa.UniqueConstraint("namespace", "key", name="uq_jobs_namespace_key"),
    )
    due = sa.text("next_fire_at IS NOT NULL")
    op.create_index("ix_jobs_due", "jobs", ["next_fire_at"], sqlite_where=due,
                    postgresql_where=due)
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("job_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("scheduled_at", US, nullable=False),
        sa.Column("fired_at", US, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", US),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", US),
        sa.Column("started_at", US),
        sa.Column("finished_at", US),
        sa.Column("node", sa.String(64)),
        sa.Column("payload", sa.Text),
        sa.Column("has_override", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    scheduled = sa.text("kind = 'scheduled'")
    op.create_index("uq_runs_occurrence", "runs", ["job_id", "scheduled_at"], unique=True,
                    sqlite_where=scheduled, postgresql_where=scheduled)
    run_due = sa.text("due_at IS NOT NULL")
    op.create_index("ix_runs_due", "runs", ["due_at"], sqlite_where=run_due,
                    postgresql_where=run_due)
    op.create_index("ix_runs_job", "runs", ["job_id", "id"])
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", US, nullable=False),
        sa.Column("finished_at", US, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.Text),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("run_id", "number", name="pk_attempts"),
    )


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("runs")
    op.drop_table("jobs")
