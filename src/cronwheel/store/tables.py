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
    LargeBinary,
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
    Column("alert", Text, nullable=True),  # {"after": n, "webhook": url}
    Column("failures", Integer, nullable=False, server_default="0"),  # consecutive, for alerts
    Column("depends_on", Text, nullable=True),  # [{job, namespace, strategy, window}] (0007)
    Column("expiry_us", BigInteger, nullable=True),  # a waiting run's expiry; None: 24 h (0007)
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
partial_index("ix_runs_waiting", runs.c.scheduled_at, where="state = 'waiting'")
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

# -- workers (migration 0004) -----------------------------------------------------------------

workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),  # fresh per process start
    Column("name", String(255), nullable=False),  # stable: what switches and operators name
    Column("host", String(255), nullable=False),
    Column("groups", Text, nullable=False),  # ",a,b," so one LIKE finds a group
    Column("capacity", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),  # database clock
    Column("stopped_at", BigInteger, nullable=True),
    Column("types", Text, nullable=True),  # ",shell,hive," accepted; NULL: the built-ins
)
Index("ix_workers_name", workers.c.name)

worker_switches = Table(
    "worker_switches",
    metadata,
    Column("job_id", String(36), nullable=False),  # "*": every job
    Column("worker_name", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("job_id", "worker_name", name="pk_worker_switches"),
)

LIVE_TASK = "state IN ('assigned', 'running')"

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("run_id", String(36), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("job_id", String(36), nullable=False),
    Column("worker_id", String(64), nullable=False),
    Column("worker_name", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Column("lease_until", BigInteger, nullable=False),
    Column("kill_requested", Boolean, nullable=False, default=False),
    Column("exit_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("log_size", BigInteger, nullable=False, default=0),
    Column("result_size", BigInteger, nullable=False, default=0),
)
Index("ix_tasks_run", tasks.c.run_id, tasks.c.attempt)
partial_index("ix_tasks_live_worker", tasks.c.worker_id, where=LIVE_TASK)
partial_index("ix_tasks_live_lease", tasks.c.lease_until, where=LIVE_TASK)
partial_index("ix_tasks_live_host", tasks.c.host, where=LIVE_TASK)
partial_index("ix_tasks_output_kept", tasks.c.finished_at,
              where="log_size > 0 OR result_size > 0")

task_output = Table(
    "task_output",
    metadata,
    Column("task_id", String(36), nullable=False),
    Column("stream", String(8), nullable=False),  # log | result
    Column("offset", BigInteger, nullable=False),  # bytes before this chunk
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("task_id", "stream", "offset", name="pk_task_output"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("job_id", String(36), nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("webhook", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # pending | sent | failed
    Column("tries", Integer, nullable=False, default=0),
    Column("sent_at", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
)
Index("ix_alerts_job", alerts.c.job_id, alerts.c.id)
partial_index("ix_alerts_pending", alerts.c.created_at,
              where="state IN ('pending', 'sending')")

# -- dependencies (migration 0007) -------------------------------------------------------------

FOLLOWER_SCHEDULE = '{"kind":"dependencies"}'  # a job run by its upstreams alone, as stored
partial_index("ix_jobs_followers", jobs.c.id, where=f"schedule = '{FOLLOWER_SCHEDULE}'")

job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("downstream_id", String(36), nullable=False),
    Column("upstream_namespace", String(255), nullable=False),
    Column("upstream_key", String(255), nullable=False),
    Column("strategy", String(8), nullable=False),
    Column("window", String(32), nullable=False),
    PrimaryKeyConstraint("downstream_id", "upstream_namespace", "upstream_key",
                         name="pk_job_dependencies"),
)
Index("ix_job_dependencies_upstream", job_dependencies.c.upstream_namespace,
      job_dependencies.c.upstream_key)

# -- the audit trail (migration 0010) ----------------------------------------------------------

audit = Table(
    "audit",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("app", String(63)),
    Column("token_prefix", String(16)),
    Column("role", String(16)),
    Column("end_user", String(255)),
    Column("address", String(255)),
    Column("namespace", String(255)),
    Column("target", String(255)),
    Column("detail", Text, nullable=False),  # JSON object
)
# Newest first, by (at, id): every listing pages on these; each filter has its own prefix.
Index("ix_audit_at", audit.c.at, audit.c.id)
Index("ix_audit_app", audit.c.app, audit.c.at, audit.c.id)
Index("ix_audit_namespace", audit.c.namespace, audit.c.at, audit.c.id)
Index("ix_audit_action", audit.c.action, audit.c.at, audit.c.id)
partial_index("ix_audit_refused", audit.c.outcome, audit.c.at, audit.c.id,
              where="outcome <> 'ok'")
