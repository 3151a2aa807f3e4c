"""The job types a worker accepts (`cronwheel worker --types`), for the hand-off to filter on.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"  # after the admission rules
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        # ",shell,http," so one LIKE finds a type, as for groups; NULL: the built-in types
        batch.add_column(sa.Column("types", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("types")
