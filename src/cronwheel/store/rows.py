"""Conversions between table rows and domain values."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

import orjson

from cronwheel.domain.audit import AuditEntry
from cronwheel.domain.dependencies import Dependency, Strategy
from cronwheel.domain.jobs import (
    DEFAULT_EXPIRY_US,
    AlertPolicy,
    ConcurrencyPolicy,
    Job,
    JobSpec,
    JobState,
    MisfirePolicy,
    RetryPolicy,
)
from cronwheel.domain.runs import Attempt, AttemptOutcome, Run, RunKind, RunState
from cronwheel.domain.schedules import Schedule, schedule_from_dict
from cronwheel.domain.targets import Target, target_from_dict
from cronwheel.domain.windows import parse_window
from cronwheel.domain.worker_target import AS_STORED

NO_PAYLOAD = b"null"

E = TypeVar("E", bound=Enum)


def _by_value(kind: type[E]) -> Callable[[str], E]:
    """`kind(value)` for a stored value, as one dict lookup: an Enum call costs ~0.8 µs, and
    a claim reads three per job (KeyError for a value the enum lacks, as ValueError there)."""
    return {member.value: member for member in kind}.__getitem__


_MISFIRE = _by_value(MisfirePolicy)
_CONCURRENCY = _by_value(ConcurrencyPolicy)
_JOB_STATE = _by_value(JobState)
_RUN_KIND = _by_value(RunKind)
_RUN_STATE = _by_value(RunState)
_OUTCOME = _by_value(AttemptOutcome)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@functools.lru_cache(maxsize=4096)
def _target(text: str) -> Target:
    # Many jobs share a handful of targets; parse each distinct one once.
    return target_from_dict(orjson.loads(text), job_types=AS_STORED)


@functools.lru_cache(maxsize=256)
def _retry(text: str) -> RetryPolicy:
    return RetryPolicy(*orjson.loads(text))


def retry_from_text(text: str) -> RetryPolicy:
    """A job's stored retry policy (`jobs.retry`), parsed once per distinct text."""
    return _retry(text)


def _schedule(text: str) -> Schedule:
    return schedule_from_dict(orjson.loads(text), 0)


def job_values(job: Job) -> dict[str, Any]:
    spec = job.spec
    retry = spec.retry
    return {
        "id": job.id,
        "namespace": spec.namespace,
        "key": spec.key,
        "state": job.state.value,
        "schedule": dumps(spec.schedule.to_dict()),
        "target": dumps(spec.target.to_dict()),
        "payload": dumps(spec.payload),
        "priority": spec.priority,
        "retry": dumps(
            [retry.max_attempts, retry.initial_backoff_us, retry.max_backoff_us,
             retry.multiplier, retry.jitter]
        ),
        "misfire": spec.misfire.value,
        "misfire_grace_us": spec.misfire_grace_us,
        "concurrency": spec.concurrency.value,
        "alert": None if spec.alert is None else dumps([spec.alert.after, spec.alert.webhook]),
        "depends_on": dumps([d.to_dict() for d in spec.depends_on]) if spec.depends_on else None,
        "expiry_us": None if spec.expiry_us == DEFAULT_EXPIRY_US else spec.expiry_us,
        "fingerprint": job.fingerprint,
        "next_fire_at": job.next_fire_at,
        "remaining_us": job.remaining_us,
        "last_fire_at": job.last_fire_at,
        "lease_owner": None,
        "lease_until": None,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def job_from_row(row: Mapping[Any, Any]) -> Job:
    spec = JobSpec(
        namespace=row["namespace"],
        key=row["key"],
        schedule=_schedule(row["schedule"]),
        target=_target(row["target"]),
        payload=orjson.loads(row["payload"]) if row["payload"] is not None else None,
        priority=row["priority"],
        retry=_retry(row["retry"]),
        misfire=_MISFIRE(row["misfire"]),
        misfire_grace_us=row["misfire_grace_us"],
        concurrency=_CONCURRENCY(row["concurrency"]),
        alert=None if row["alert"] is None else AlertPolicy(*orjson.loads(row["alert"])),
        depends_on=_dependencies(row["depends_on"]),
        expiry_us=row["expiry_us"] or DEFAULT_EXPIRY_US,
    )
    return Job(
        id=row["id"],
        spec=spec,
        state=_JOB_STATE(row["state"]),
        next_fire_at=row["next_fire_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        remaining_us=row["remaining_us"],
        last_fire_at=row["last_fire_at"],
        fingerprint=row["fingerprint"],
    )


@functools.lru_cache(maxsize=1024)
def _dependencies(text: str | None) -> tuple[Dependency, ...]:
    if text is None:
        return ()
    return tuple(Dependency(d["namespace"], d["job"], Strategy(d["strategy"]),
                            parse_window(d["window"])) for d in orjson.loads(text))


def dependency_rows(job: Job) -> list[dict[str, Any]]:
    """The job's edges in `job_dependencies`, one per upstream."""
    return [{"downstream_id": job.id, "upstream_namespace": d.namespace,
             "upstream_key": d.job, "strategy": d.strategy.value, "window": str(d.window)}
            for d in job.spec.depends_on]


def run_from_row(row: Mapping[Any, Any]) -> Run:
    has_override = bool(row["has_override"])
    return Run(
        id=row["id"],
        job_id=row["job_id"],
        namespace=row["namespace"],
        job_key=row["job_key"],
        kind=_RUN_KIND(row["kind"]),
        state=_RUN_STATE(row["state"]),
        scheduled_at=row["scheduled_at"],
        fired_at=row["fired_at"],
        attempts=row["attempts"],
        due_at=row["due_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        node=row["node"],
        payload_override=orjson.loads(row["payload"]) if has_override else None,
        has_override=has_override,
        last_error=row["last_error"],
    )


def attempt_from_row(row: Mapping[Any, Any]) -> Attempt:
    return Attempt(
        run_id=row["run_id"],
        number=row["number"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=_OUTCOME(row["outcome"]),
        node=row["node"],
        status_code=row["status_code"],
        response=row["response"],
        error=row["error"],
    )


def attempt_values(attempt: Attempt) -> dict[str, Any]:
    return {
        "run_id": attempt.run_id,
        "number": attempt.number,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "outcome": attempt.outcome.value,
        "node": attempt.node,
        "status_code": attempt.status_code,
        "response": attempt.response,
        "error": attempt.error,
    }


def audit_values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "at": entry.at, "action": entry.action[:64], "outcome": entry.outcome,
        "status": entry.status, "app": entry.app, "token_prefix": entry.token_prefix,
        "role": entry.role, "end_user": entry.user, "address": entry.address,
        "namespace": entry.namespace, "target": entry.target,
        "detail": orjson.dumps(entry.detail).decode(),
    }


def audit_from_row(row: Mapping[Any, Any]) -> AuditEntry:
    return AuditEntry(
        id=row["id"], at=row["at"], action=row["action"], outcome=row["outcome"],
        status=row["status"], app=row["app"], token_prefix=row["token_prefix"],
        role=row["role"], user=row["end_user"], address=row["address"],
        namespace=row["namespace"], target=row["target"], detail=orjson.loads(row["detail"]),
    )
