"""The job types a worker accepts (`cronwheel worker --types`), for the hand-off to filter on.

Revision ID: 0012
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0007"  # the lead re-chains it after the other branches' migrations
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        # ",shell,http," so one LIKE finds a type, as for groups; NULL: the built-in types
        batch.add_column(sa.Column("types", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("types")
