"""Apps, the namespaces they claim, and their tokens (hashed).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("grants", sa.Text, nullable=False),
        sa.Column("limits", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "app_namespaces",
        sa.Column("claim", sa.String(256), primary_key=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_app_namespaces_app", "app_namespaces", ["app"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_index("ix_tokens_app", "tokens", ["app"])


def downgrade() -> None:
    for table in ("tokens", "app_namespaces", "apps"):
        op.drop_table(table)
