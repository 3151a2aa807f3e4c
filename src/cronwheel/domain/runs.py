"""Runs (one occurrence of a job) and attempts (one try of a run), with their state machine."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cronwheel.domain.errors import IllegalTransition
from cronwheel.domain.time import Micros


class RunState(StrEnum):
    WAITING = "waiting"  # its dependencies do not hold yet: never delivered in this state
    PENDING = "pending"  # waiting for its first or next attempt
    RUNNING = "running"  # an attempt is under way, held by a lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSED = "missed"  # skipped by the misfire policy; never delivered
    SKIPPED = "skipped"  # skipped by the concurrency policy: the previous run was in flight
    KILLED = "killed"  # stopped by an operator; never retried
    EXPIRED = "expired"  # still waiting when its job's expiry passed; never delivered


class RunKind(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"  # trigger-now; does not move the schedule


class AttemptOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # the receiver answered with an error
    TIMEOUT = "timeout"
    ERROR = "error"  # could not reach the receiver
    ABANDONED = "abandoned"  # the node or worker holding it died; outcome unknown
    KILLED = "killed"  # stopped by an operator's kill


TERMINAL = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.MISSED, RunState.SKIPPED,
     RunState.KILLED, RunState.EXPIRED}
)

_ALLOWED: dict[RunState, frozenset[RunState]] = {
    RunState.WAITING: frozenset({RunState.PENDING, RunState.EXPIRED, RunState.CANCELLED,
                                 RunState.KILLED}),
    RunState.PENDING: frozenset({RunState.RUNNING, RunState.CANCELLED, RunState.KILLED}),
    RunState.RUNNING: frozenset(
        {RunState.SUCCEEDED, RunState.FAILED, RunState.PENDING, RunState.RUNNING,
         RunState.CANCELLED, RunState.KILLED}
    ),
}


def check_transition(current: RunState, target: RunState) -> None:
    if target not in _ALLOWED.get(current, frozenset()):
        raise IllegalTransition(f"a run cannot go from {current} to {target}")


@dataclass(frozen=True, slots=True)
class Attempt:
    run_id: str
    number: int
    started_at: Micros
    finished_at: Micros
    outcome: AttemptOutcome
    node: str
    status_code: int | None = None
    response: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    job_id: str
    namespace: str
    job_key: str
    kind: RunKind
    state: RunState
    scheduled_at: Micros
    fired_at: Micros
    attempts: int = 0
    due_at: Micros | None = None
    started_at: Micros | None = None
    finished_at: Micros | None = None
    node: str | None = None
    payload_override: Any = None
    has_override: bool = False
    last_error: str | None = None


REMOVED = "removed on request"


def removed(run: Run, now: Micros) -> Run:
    """A run that has not started, ended `cancelled` and kept (Sentinel's "removed"): only a
    waiting run, or a pending one never attempted; one that has started must be killed."""
    if run.state not in (RunState.WAITING, RunState.PENDING) or run.attempts or run.started_at:
        raise IllegalTransition(f"the run is {run.state.value} and has started or ended: "
                                "only a run not started yet can be removed (kill it instead)",
                                "run_id")
    return replace(run, state=RunState.CANCELLED, due_at=None, finished_at=now,
                   last_error=REMOVED)
