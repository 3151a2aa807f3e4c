"""The run a fire or a manual trigger makes: one definition for the SQL and memory stores."""

from __future__ import annotations

from typing import Any

from cronwheel.contracts import Fire
from cronwheel.domain.jobs import Job
from cronwheel.domain.runs import Run, RunKind, RunState
from cronwheel.domain.time import Micros

FORBIDDEN = "the previous run was still in flight (concurrency: forbid)"


def fired_run(
    fire: Fire, node: str, now: Micros, lease_until: Micros, busy: bool
) -> tuple[Run, Micros | None]:
    """The run of one fire and the expiry of its lease (None: nobody holds it): missed,
    skipped by `forbid`, waiting for its dependencies, delivered now, or left pending."""
    job = fire.job
    lease: Micros | None = None
    if not fire.plan.fire:
        state, due, attempts = RunState.MISSED, None, 0
    elif busy:
        state, due, attempts = RunState.SKIPPED, None, 0
    elif job.spec.depends_on:  # the resolver releases it once its dependencies hold
        state, due, attempts = RunState.WAITING, None, 0
    elif fire.deliver_now:
        state, due, attempts, lease = RunState.RUNNING, lease_until, 1, lease_until
    else:
        state, due, attempts = RunState.PENDING, now, 0
    running = state is RunState.RUNNING
    run = Run(
        id=fire.run_id,
        job_id=job.id,
        namespace=job.spec.namespace,
        job_key=job.spec.key,
        kind=RunKind.SCHEDULED,
        state=state,
        scheduled_at=fire.plan.scheduled_at,
        fired_at=now,
        attempts=attempts,
        due_at=due,
        started_at=now if running else None,
        finished_at=now if state in (RunState.MISSED, RunState.SKIPPED) else None,
        node=node if running else None,
        last_error=FORBIDDEN if busy else None,
    )
    return run, lease


def manual_run(job: Job, run_id: str, now: Micros, payload: Any, has_override: bool) -> Run:
    """A triggered run: pending and due now, with the payload it overrides, if any."""
    return Run(
        id=run_id,
        job_id=job.id,
        namespace=job.spec.namespace,
        job_key=job.spec.key,
        kind=RunKind.MANUAL,
        state=RunState.PENDING,
        scheduled_at=now,
        fired_at=now,
        due_at=now,
        payload_override=payload if has_override else None,
        has_override=has_override,
    )
