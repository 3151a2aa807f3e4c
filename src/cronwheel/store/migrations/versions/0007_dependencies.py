"""Dependencies between jobs: the definition on the job, an edge table for the reverse
lookup (which jobs wait for this one), and an index over waiting runs.

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"  # after k8s; apps' 0005 goes before 0006
branch_labels = None
depends_on = None

WAITING = sa.text("state = 'waiting'")
FOLLOWER = sa.text("""schedule = '{"kind":"dependencies"}'""")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("depends_on", sa.Text))
        batch.add_column(sa.Column("expiry_us", sa.BigInteger))
    op.create_table(
        "job_dependencies",
        sa.Column("downstream_id", sa.String(36), nullable=False),
        sa.Column("upstream_namespace", sa.String(255), nullable=False),
        sa.Column("upstream_key", sa.String(255), nullable=False),
        sa.Column("strategy", sa.String(8), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("downstream_id", "upstream_namespace", "upstream_key",
                                name="pk_job_dependencies"),
    )
    op.create_index("ix_job_dependencies_upstream", "job_dependencies",
                    ["upstream_namespace", "upstream_key"])
    op.create_index("ix_runs_waiting", "runs", ["scheduled_at"], sqlite_where=WAITING,
                    postgresql_where=WAITING)
    op.create_index("ix_jobs_followers", "jobs", ["id"], sqlite_where=FOLLOWER,
                    postgresql_where=FOLLOWER)


def downgrade() -> None:
    op.drop_index("ix_jobs_followers", "jobs")
    op.drop_index("ix_runs_waiting", "runs")
    op.drop_index("ix_job_dependencies_upstream", "job_dependencies")
    op.drop_table("job_dependencies")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("expiry_us")
        batch.drop_column("depends_on")
