"""The audit trail: one row per change a caller asked for, refusals included.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"  # after the Sentinel tables
branch_labels = None
depends_on = None

REFUSED = sa.text("outcome <> 'ok'")


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("app", sa.String(63)),
        sa.Column("token_prefix", sa.String(16)),
        sa.Column("role", sa.String(16)),
        sa.Column("end_user", sa.String(255)),
        sa.Column("address", sa.String(255)),
        sa.Column("namespace", sa.String(255)),
        sa.Column("target", sa.String(255)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at", "id"])
    op.create_index("ix_audit_app", "audit", ["app", "at", "id"])
    op.create_index("ix_audit_namespace", "audit", ["namespace", "at", "id"])
    op.create_index("ix_audit_action", "audit", ["action", "at", "id"])
    op.create_index("ix_audit_refused", "audit", ["outcome", "at", "id"],
                    sqlite_where=REFUSED, postgresql_where=REFUSED)


def downgrade() -> None:
    for name in ("ix_audit_refused", "ix_audit_action", "ix_audit_namespace", "ix_audit_app",
                 "ix_audit_at"):
        op.drop_index(name, "audit")
    op.drop_table("audit")
