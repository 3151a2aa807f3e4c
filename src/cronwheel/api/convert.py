"""Native API models to domain values and back."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from cronwheel.api.schemas import AttemptOut, JobIn, RunOut
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.jobs import AlertPolicy, ConcurrencyPolicy, Job, JobSpec, RetryPolicy
from cronwheel.domain.kubernetes import KubernetesTarget
from cronwheel.domain.runs import Attempt, Run
from cronwheel.domain.schedules import schedule_from_dict
from cronwheel.domain.targets import Target, target_from_dict
from cronwheel.domain.time import US_PER_S, Micros, to_iso, to_iso_or_none
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.service import Submission


def body_fingerprint(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _us(seconds: float) -> Micros:
    return round(seconds * US_PER_S)


def default_concurrency(target: Target) -> ConcurrencyPolicy:
    """A container that outlives its period must not pile up Jobs: Kubernetes targets
    forbid an overlapping run unless asked; everything else allows it, as before."""
    return ConcurrencyPolicy.FORBID if isinstance(target, KubernetesTarget) \
        else ConcurrencyPolicy.ALLOW


def submission(body: JobIn, now: Micros, job_types: SpecParsers) -> Submission:
    """The job a body asks for; the service checks the limits (payload size and so on)."""
    try:
        schedule = schedule_from_dict(body.schedule, now)
    except InvalidField as exc:
        raise InvalidField(exc.message, f"schedule.{exc.field or 'kind'}") from None
    spec = JobSpec(
        namespace=body.namespace,
        key=body.key,
        schedule=schedule,
        target=(target := target_from_dict(body.target, job_types=job_types)),
        payload=body.payload,
        priority=body.priority,
        retry=RetryPolicy(
            max_attempts=body.retry.max_attempts,
            initial_backoff_us=_us(body.retry.initial_backoff),
            max_backoff_us=_us(body.retry.max_backoff),
            multiplier=body.retry.multiplier,
            jitter=body.retry.jitter,
        ),
        misfire=body.misfire.policy,
        misfire_grace_us=_us(body.misfire.grace),
        concurrency=(concurrency := body.concurrency or default_concurrency(target)),
        alert=None if body.alert is None else AlertPolicy(body.alert.after, body.alert.webhook),
    )
    # the default resolved, so a job's fingerprint does not depend on it being spelled out
    return Submission(spec, body_fingerprint(body.model_dump(mode="json")
                                             | {"concurrency": concurrency.value}))


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API shows it (the JobOut schema), built directly: responses of thousands
    of jobs would spend most of their time building and validating models."""
    spec = job.spec
    retry = spec.retry
    return {
        "id": job.id,
        "namespace": spec.namespace,
        "key": spec.key,
        "state": job.state.value,
        "schedule": spec.schedule.to_dict(),
        "target": spec.target.to_dict(),
        "payload": spec.payload,
        "priority": spec.priority,
        "retry": {
            "max_attempts": retry.max_attempts,
            "initial_backoff": retry.initial_backoff_us / US_PER_S,
            "max_backoff": retry.max_backoff_us / US_PER_S,
            "multiplier": float(retry.multiplier),
            "jitter": float(retry.jitter),
        },
        "misfire": {"policy": spec.misfire.value, "grace": spec.misfire_grace_us / US_PER_S},
        "concurrency": spec.concurrency.value,
        "alert": None if spec.alert is None else {"after": spec.alert.after,
                                                   "webhook": spec.alert.webhook},
        "next_fire_at": to_iso_or_none(job.next_fire_at),
        "remaining": None if job.remaining_us is None else job.remaining_us / US_PER_S,
        "last_fire_at": to_iso_or_none(job.last_fire_at),
        "created_at": to_iso(job.created_at),
        "updated_at": to_iso(job.updated_at),
    }


def run_out(run: Run) -> RunOut:
    return RunOut(**_run_fields(run))


def _run_fields(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_id": run.job_id,
        "namespace": run.namespace,
        "key": run.job_key,
        "kind": run.kind.value,
        "state": run.state.value,
        "scheduled_at": to_iso(run.scheduled_at),
        "fired_at": to_iso(run.fired_at),
        "attempts": run.attempts,
        "started_at": to_iso_or_none(run.started_at),
        "finished_at": to_iso_or_none(run.finished_at),
        "node": run.node,
        "last_error": run.last_error,
        "payload": run.payload_override if run.has_override else None,
    }


def run_detail_fields(run: Run, attempts: list[Attempt]) -> dict[str, Any]:
    fields = _run_fields(run)
    fields["attempt_log"] = [
        AttemptOut(
            number=a.number,
            outcome=a.outcome.value,
            started_at=to_iso(a.started_at),
            finished_at=to_iso(a.finished_at),
            node=a.node,
            status_code=a.status_code,
            response=a.response,
            error=a.error,
        )
        for a in attempts
    ]
    return fields
