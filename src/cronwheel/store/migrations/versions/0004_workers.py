"""Workers, per-job worker switches, tasks with chunked output, alerts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("state IN ('assigned', 'running')")


def _partial(name: str, table: str, columns: list[str], where: sa.TextClause) -> None:
    op.create_index(name, table, columns, sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("alert", sa.Text))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
        sa.Column("stopped_at", sa.BigInteger),
    )
    op.create_index("ix_workers_name", "workers", ["name"])
    op.create_table(
        "worker_switches",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("worker_name", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "worker_name", name="pk_worker_switches"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("worker_name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("kill_requested", sa.Boolean, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("log_size", sa.BigInteger, nullable=False),
        sa.Column("result_size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_tasks_run", "tasks", ["run_id", "attempt"])
    _partial("ix_tasks_live_worker", "tasks", ["worker_id"], LIVE)
    _partial("ix_tasks_live_lease", "tasks", ["lease_until"], LIVE)
    _partial("ix_tasks_live_host", "tasks", ["host"], LIVE)
    _partial("ix_tasks_output_kept", "tasks", ["finished_at"],
             sa.text("log_size > 0 OR result_size > 0"))
    op.create_table(
        "task_output",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("task_id", "stream", "offset", name="pk_task_output"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("webhook", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.BigInteger),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_alerts_job", "alerts", ["job_id", "id"])
    _partial("ix_alerts_pending", "alerts", ["created_at"],
             sa.text("state IN ('pending', 'sending')"))


def downgrade() -> None:
    for table in ("alerts", "task_output", "tasks", "worker_switches", "workers"):
        op.drop_table(table)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("failures")
        batch.drop_column("alert")
