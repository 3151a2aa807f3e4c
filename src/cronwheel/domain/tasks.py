"""Tasks (one attempt of a run on one worker), workers, and how tasks add up to an attempt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cronwheel.domain.command_types import BUILTIN_TYPES
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.time import Micros

WORKERS_OWNER = "workers"
"""The lease owner of a run handed to workers: no node delivers it; task leases guard it."""

HANDED_OFF: Micros = 2**62
"""`due_at` of a run handed to workers: never due for a node's rescue, still counted live."""


class TaskState(StrEnum):
    ASSIGNED = "assigned"  # chosen for a worker, not yet leased by it
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    ERROR = "error"  # could not start
    LOST = "lost"  # its worker stopped heartbeating


LIVE_STATES = (TaskState.ASSIGNED, TaskState.RUNNING)

FINISH_STATES: dict[str, TaskState] = {
    "success": TaskState.SUCCEEDED,
    "failure": TaskState.FAILED,
    "timeout": TaskState.TIMEOUT,
    "killed": TaskState.KILLED,
    "error": TaskState.ERROR,
}

_OUTCOMES = {
    TaskState.SUCCEEDED: AttemptOutcome.SUCCESS,
    TaskState.FAILED: AttemptOutcome.FAILURE,
    TaskState.TIMEOUT: AttemptOutcome.TIMEOUT,
    TaskState.KILLED: AttemptOutcome.KILLED,
    TaskState.ERROR: AttemptOutcome.ERROR,
    TaskState.LOST: AttemptOutcome.ABANDONED,
}
# When tasks of one attempt end differently, the attempt takes the first of these it has.
_PRECEDENCE = (
    TaskState.KILLED, TaskState.FAILED, TaskState.TIMEOUT, TaskState.ERROR, TaskState.LOST,
)


@dataclass(frozen=True, slots=True)
class TaskEnd:
    worker_name: str
    state: TaskState
    exit_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AttemptSummary:
    outcome: AttemptOutcome
    exit_code: int | None
    error: str | None


def summarise(ends: Sequence[TaskEnd], kill_requested: bool) -> AttemptSummary:
    """One outcome for an attempt's tasks: success only if every task succeeded (broadcast
    needs all its workers); a kill anywhere makes the attempt killed."""
    if kill_requested:
        return AttemptSummary(AttemptOutcome.KILLED, None, "killed on request")
    bad = [e for e in ends if e.state is not TaskState.SUCCEEDED]
    if not bad:
        return AttemptSummary(AttemptOutcome.SUCCESS, None, None)
    worst = min(bad, key=lambda e: _PRECEDENCE.index(e.state))
    detail = "; ".join(
        f"{e.worker_name}: {e.state.value}"
        + (f" (exit {e.exit_code})" if e.exit_code is not None else "")
        + (f" {e.error}" if e.error else "")
        for e in bad
    )
    prefix = f"{len(bad)} of {len(ends)} workers failed: " if len(ends) > 1 else ""
    return AttemptSummary(_OUTCOMES[worst.state], worst.exit_code, prefix + detail)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str  # issued by the server per registration, bound to its token (worker_ids.py)
    name: str  # stable across restarts
    host: str
    groups: tuple[str, ...]
    capacity: int
    version: str
    types: tuple[str, ...] | None = None  # job types it accepts; None: the built-in ones

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(sorted(BUILTIN_TYPES)) if self.types is None else self.types

    def accepts(self, job_type: str) -> bool:
        return job_type in self.accepted


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    info: WorkerInfo
    started_at: Micros
    heartbeat_at: Micros
    stopped_at: Micros | None
    online: bool
    busy: int  # tasks assigned or running


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    run_id: str
    attempt: int
    job_id: str
    worker_id: str
    worker_name: str
    host: str
    state: TaskState
    created_at: Micros
    started_at: Micros | None
    finished_at: Micros | None
    exit_code: int | None
    error: str | None
    log_size: int
    result_size: int
    kill_requested: bool


@dataclass(frozen=True, slots=True)
class TaskWork:
    """What a worker needs to run a task it leased."""

    task: Task
    namespace: str
    key: str
    job_type: str
    spec: dict[str, Any]
    timeout: float
    payload: Any
    scheduled_at: Micros
