"""The schema, as SQLAlchemy Core tables. Instants are BIGINT microseconds since the epoch (UTC).

Invariant: `jobs.next_fire_at` is set only while a job is active, and `runs.due_at` only while a
run is pending or running (for a running run it equals its lease expiry). Both are indexed
partially, so a claim reads only live rows however many finished ones pile up.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()


def partial_index(name: str, *columns: Column[Any], where: str, unique: bool = False) -> Index:
    """An index over the rows `where` holds, on both backends (the live rows, mostly)."""
    clause = text(where)
    return Index(name, *columns, unique=unique, sqlite_where=clause, postgresql_where=clause)


jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("schedule", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("payload", Text, nullable=True),
    Column("priority", Integer, nullable=False, default=0),
    Column("retry", Text, nullable=False),
    Column("misfire", String(16), nullable=False),
    Column("misfire_grace_us", BigInteger, nullable=False),
    Column("concurrency", String(16), nullable=False, server_default="allow"),
    Column("fingerprint", String(64), nullable=False),
    Column("next_fire_at", BigInteger, nullable=True),
    Column("remaining_us", BigInteger, nullable=True),
    Column("last_fire_at", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("namespace", "key", name="uq_jobs_namespace_key"),
)
partial_index("ix_jobs_due", jobs.c.next_fire_at, where="next_fire_at IS NOT NULL")

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("job_id", String(36), nullable=False),
    Column("namespace", String(255), nullable=False),
    Column("job_key", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("scheduled_at", BigInteger, nullable=False),
    Column("fired_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Column("node", String(64), nullable=True),
    Column("payload", Text, nullable=True),
    Column("has_override", Boolean, nullable=False, default=False),
    Column("last_error", Text, nullable=True),
)
partial_index(
    "uq_runs_occurrence", runs.c.job_id, runs.c.scheduled_at, where="kind = 'scheduled'",
    unique=True,
)
partial_index("ix_runs_due", runs.c.due_at, where="due_at IS NOT NULL")
Index("ix_runs_job", runs.c.job_id, runs.c.id)
partial_index("ix_runs_live_by_job", runs.c.job_id, where="due_at IS NOT NULL")

Index("ix_runs_finished", runs.c.finished_at)
partial_index("ix_jobs_leased", jobs.c.lease_owner, where="lease_owner IS NOT NULL")
partial_index("ix_runs_leased", runs.c.lease_owner, where="lease_owner IS NOT NULL")

nodes = Table(
    "nodes",
    metadata,
    Column("owner", String(64), primary_key=True),  # fresh per process start
    Column("name", String(255), nullable=False),
    Column("address", String(255), nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),  # database clock
    Column("stopped_at", BigInteger, nullable=True),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(36), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("node", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("run_id", "number", name="pk_attempts"),
)
