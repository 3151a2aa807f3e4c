"""Native API models to domain values and back."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from cronwheel.api.schemas import AttemptOut, JobIn, RunOut
from cronwheel.domain.dependencies import parse_dependencies
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.jobs import (
    DEFAULT_EXPIRY_US,
    AlertPolicy,
    ConcurrencyPolicy,
    Job,
    JobSpec,
    RetryPolicy,
)
from cronwheel.domain.kubernetes import KubernetesTarget
from cronwheel.domain.runs import Attempt, Run
from cronwheel.domain.schedules import schedule_from_dict
from cronwheel.domain.targets import Target, target_from_dict
from cronwheel.domain.time import US_PER_S, Micros, to_iso, to_iso_or_none
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.graph import GraphNode
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


def submission(body: JobIn, now: Micros, job_types: SpecParsers,
               targets: dict[bytes, Target] | None = None) -> Submission:
    """The job a body asks for; the service checks the limits (payload size and so on).
    `targets`: the targets parsed so far in this request, by their JSON (a batch's jobs mostly
    share one target; parsing it is a tenth of a batch job's CPU)."""
    try:
        schedule = schedule_from_dict(body.schedule, now)
    except InvalidField as exc:
        raise InvalidField(exc.message, f"schedule.{exc.field or 'kind'}") from None
    spec = JobSpec(
        namespace=body.namespace,
        key=body.key,
        schedule=schedule,
        target=(target := _target(body.target, job_types, targets)),
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
        depends_on=parse_dependencies(body.depends_on, body.namespace),
        expiry_us=DEFAULT_EXPIRY_US if body.expiry is None else _us(body.expiry),
    )
    # the default resolved, so a job's fingerprint does not depend on it being spelled out
    return Submission(spec, body_fingerprint(_fingerprinted(body)
                                             | {"concurrency": concurrency.value}))


def _target(given: dict[str, Any], job_types: SpecParsers,
            known: dict[bytes, Target] | None) -> Target:
    """A target is a value: equal JSON, equal target (an invalid one raises every time)."""
    if known is None:
        return target_from_dict(given, job_types=job_types)
    text = orjson.dumps(given, option=orjson.OPT_SORT_KEYS)
    target = known.get(text)
    if target is None:
        target = known[text] = target_from_dict(given, job_types=job_types)
    return target


def _fingerprinted(body: JobIn) -> dict[str, Any]:
    """The body as hashed: fields added later count only when given, so a job submitted
    before they existed is still the same job."""
    dumped = body.model_dump(mode="json")
    for later in ("depends_on", "expiry"):
        if dumped.get(later) is None:
            dumped.pop(later, None)
    return dumped


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
        "depends_on": [d.to_dict() for d in spec.depends_on],
        "expiry": spec.expiry_us / US_PER_S,
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


def _graph_runs(runs: list[Run]) -> list[dict[str, Any]]:
    return [{"id": r.id, "scheduled_at": to_iso(r.scheduled_at), "state": r.state.value}
            for r in runs]


def _graph_node(node: GraphNode) -> dict[str, Any]:
    return {
        "namespace": node.namespace,
        "key": node.key,
        "state": "missing" if node.job is None else node.job.state.value,
        "strategy": node.strategy,
        "window": node.window,
        "runs": _graph_runs(node.runs),
        "repeated": node.repeated,
        "children": [_graph_node(child) for child in node.children],
    }


def graph_json(job: Job, window: str, bounds: tuple[Micros, Micros], runs: list[Run],
               upstream: list[GraphNode], downstream: list[GraphNode]) -> dict[str, Any]:
    """The DependenciesOut schema."""
    return {
        "namespace": job.spec.namespace,
        "key": job.spec.key,
        "state": job.state.value,
        "window": window,
        "start": to_iso(bounds[0]),
        "end": to_iso(bounds[1]),
        "runs": _graph_runs(runs),
        "upstream": [_graph_node(n) for n in upstream],
        "downstream": [_graph_node(n) for n in downstream],
    }
