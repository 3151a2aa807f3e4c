"""The dialects' network admission rules and the qschedule applications (token hashes).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admission_rules",
        sa.Column("dialect", sa.String(32), primary_key=True),
        sa.Column("network", sa.String(64), primary_key=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("token", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_admission_rules_app", "admission_rules", ["app"])
    op.create_table(
        "qschedule_apps",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_qschedule_apps_app", "qschedule_apps", ["app"])


def downgrade() -> None:
    for table in ("qschedule_apps", "admission_rules"):
        op.drop_table(table)
