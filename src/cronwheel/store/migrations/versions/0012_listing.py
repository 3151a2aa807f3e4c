"""Job listings in (namespace, key) order on an index, in byte order on both backends.

SQLite's unique index on (namespace, key) already compares bytes (BINARY). PostgreSQL's
compares in the database's collation (en_US, say), where the names starting with a prefix
claim (`dispatch:*`) are not one range: listings read this index, in the "C" collation.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"  # after the audit trail
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_jobs_listing ON jobs (namespace COLLATE "C", key COLLATE "C")')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_jobs_listing")
