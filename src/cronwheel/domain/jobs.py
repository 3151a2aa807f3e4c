"""Jobs: what a client registers, and the state changes a job may go through."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import orjson

from cronwheel.domain.dependencies import Dependency
from cronwheel.domain.errors import IllegalTransition, InvalidField
from cronwheel.domain.schedules import AfterUpstream, OneShot, Schedule
from cronwheel.domain.targets import Target, check_url
from cronwheel.domain.time import US_PER_S, Micros

DEFAULT_NAMESPACE = "default"
MAX_KEY_LENGTH = 255
MAX_PRIORITY = 1_000_000
DEFAULT_EXPIRY_US: Micros = 86_400 * US_PER_S  # a waiting run expires this long after its time
MAX_EXPIRY_US: Micros = 366 * 86_400 * US_PER_S


class JobState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class MisfirePolicy(StrEnum):
    """What to do with occurrences that were due while the service was down or behind."""

    FIRE_ONCE = "fire_once"  # one run now stands for all missed occurrences
    FIRE_ALL = "fire_all"  # one run per missed occurrence
    SKIP = "skip"  # record them as missed and wait for the next one


class ConcurrencyPolicy(StrEnum):
    """What an occurrence does while the job's previous run is still pending or running."""

    ALLOW = "allow"  # run alongside it
    FORBID = "forbid"  # skip this occurrence (recorded as a skipped run)
    REPLACE = "replace"  # cancel the previous run and start this one


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_backoff_us: Micros = 1 * US_PER_S
    max_backoff_us: Micros = 300 * US_PER_S
    multiplier: float = 2.0
    jitter: float = 0.2  # +/- this fraction of each delay

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 100:
            raise InvalidField("max_attempts must be between 1 and 100", "retry.max_attempts")
        if not 0 <= self.initial_backoff_us <= self.max_backoff_us:
            raise InvalidField(
                "initial backoff must be between 0 and max backoff", "retry.initial_backoff"
            )
        if not 1.0 <= self.multiplier <= 10.0:
            raise InvalidField("multiplier must be between 1 and 10", "retry.multiplier")
        if not 0.0 <= self.jitter <= 1.0:
            raise InvalidField("jitter must be between 0 and 1", "retry.jitter")


MAX_ALERT_AFTER = 10_000


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Post to `webhook` when `after` runs in a row have failed (and again every `after`
    further failures while the streak lasts); a success ends the streak."""

    after: int
    webhook: str

    def __post_init__(self) -> None:
        if not 1 <= self.after <= MAX_ALERT_AFTER:
            raise InvalidField(f"after must be between 1 and {MAX_ALERT_AFTER}", "alert.after")
        check_url(self.webhook, "alert.webhook", "webhook")

    def due(self, failures: int) -> bool:
        return failures > 0 and failures % self.after == 0


@dataclass(frozen=True, slots=True)
class JobSpec:
    """The client's definition of a job; two submits with equal specs are the same job."""

    namespace: str
    key: str
    schedule: Schedule
    target: Target
    payload: Any = None
    priority: int = 0
    retry: RetryPolicy = RetryPolicy()
    misfire: MisfirePolicy = MisfirePolicy.FIRE_ONCE
    misfire_grace_us: Micros = 60 * US_PER_S
    concurrency: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    alert: AlertPolicy | None = None
    depends_on: tuple[Dependency, ...] = ()
    expiry_us: Micros = DEFAULT_EXPIRY_US  # how long past its time a run may wait

    def __post_init__(self) -> None:
        check_name(self.namespace, "namespace")
        check_name(self.key, "key")
        if isinstance(self.schedule, AfterUpstream) and not self.depends_on:
            raise InvalidField("a schedule of kind dependencies needs depends_on", "schedule")
        if any(d.upstream == (self.namespace, self.key) for d in self.depends_on):
            raise InvalidField(f"depends_on: cycle {self.key} -> {self.key}", "depends_on")
        if not 1 <= self.expiry_us <= MAX_EXPIRY_US:
            raise InvalidField("expiry must be between 1 s and 366 days", "expiry")
        if not -MAX_PRIORITY <= self.priority <= MAX_PRIORITY:
            raise InvalidField(f"priority must be within +/-{MAX_PRIORITY}", "priority")
        if self.misfire_grace_us < 0:
            raise InvalidField("misfire grace must not be negative", "misfire_grace")

    def fingerprint(self) -> str:
        """Hash of the definition, used to tell an idempotent re-submit from a conflict."""
        body: dict[str, Any] = {
            "schedule": self.schedule.to_dict(),
            "target": self.target.to_dict(),
            "payload": self.payload,
            "priority": self.priority,
            "retry": [
                self.retry.max_attempts,
                self.retry.initial_backoff_us,
                self.retry.max_backoff_us,
                float(self.retry.multiplier),  # 2 and 2.0 are one setting
                float(self.retry.jitter),
            ],
            "misfire": [self.misfire.value, self.misfire_grace_us],
        }
        if self.concurrency is not ConcurrencyPolicy.ALLOW:  # older fingerprints stay valid
            body["concurrency"] = self.concurrency.value
        if self.alert is not None:
            body["alert"] = [self.alert.after, self.alert.webhook]
        if self.depends_on:  # older fingerprints stay valid
            body["depends_on"] = [d.to_dict() for d in self.depends_on]
        if self.expiry_us != DEFAULT_EXPIRY_US:
            body["expiry"] = self.expiry_us
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _after_upstream(spec: JobSpec) -> bool:
    """A job run by its upstreams alone: active without a next fire time of its own."""
    return isinstance(spec.schedule, AfterUpstream)


def zone_of(spec: JobSpec) -> str:
    """The job's IANA zone (its schedule's, UTC when the schedule has none): the wall
    clock its dependency windows are cut on."""
    tz = getattr(spec.schedule, "tz", None)
    return tz if isinstance(tz, str) and tz else "UTC"


def check_name(value: str, field: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidField(f"{field} must be 1 to {MAX_KEY_LENGTH} characters", field)
    if not value.isprintable() and any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidField(f"{field} must not contain control characters", field)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    spec: JobSpec
    state: JobState
    next_fire_at: Micros | None
    created_at: Micros
    updated_at: Micros
    remaining_us: Micros | None = None  # a paused countdown's time left
    last_fire_at: Micros | None = None  # scheduled time of the latest occurrence fired
    fingerprint: str = ""


def new_job(job_id: str, spec: JobSpec, now: Micros, fingerprint: str | None = None) -> Job:
    """`fingerprint` defaults to the spec's; APIs pass a hash of the request body instead."""
    first = spec.schedule.first(now)
    state = JobState.ACTIVE if first is not None or _after_upstream(spec) else JobState.COMPLETED
    return Job(
        id=job_id,
        spec=spec,
        state=state,
        next_fire_at=first,
        created_at=now,
        updated_at=now,
        fingerprint=fingerprint or spec.fingerprint(),
    )


def check_fires(spec: JobSpec, now: Micros) -> None:
    """Refuse a schedule that can never fire, as Quartz refuses such a trigger: a job created
    from it would only ever sit there `completed` (or record a missed run), which is never what
    the caller meant.

    Under the `skip` misfire policy a first occurrence already later than the grace is missed,
    so such a schedule fires only if it has an occurrence after `now`.
    """
    schedule = spec.schedule
    if _after_upstream(spec):
        return
    first = schedule.first(now)
    if first is None:
        raise InvalidField("the schedule has no occurrence from now on: the job would never "
                           "fire", "schedule")
    late = now - first > spec.misfire_grace_us
    if late and spec.misfire is MisfirePolicy.SKIP and schedule.next_after(now) is None:
        raise InvalidField("the schedule's only occurrences are past the misfire grace and "
                           "the misfire policy is skip: the job would never fire", "schedule")


def pause(job: Job, now: Micros) -> Job:
    if job.state is not JobState.ACTIVE:
        raise IllegalTransition(f"only an active job can be paused; this one is {job.state}")
    remaining = None
    if isinstance(job.spec.schedule, OneShot) and job.spec.schedule.countdown:
        remaining = max(0, (job.next_fire_at or now) - now)
    return replace(job, state=JobState.PAUSED, next_fire_at=None, remaining_us=remaining,
                   updated_at=now)


def resume(job: Job, now: Micros) -> Job:
    """A countdown restarts from now with the time it had left; others keep their schedule."""
    if job.state is not JobState.PAUSED:
        raise IllegalTransition(f"only a paused job can be resumed; this one is {job.state}")
    schedule = job.spec.schedule
    if isinstance(schedule, OneShot) and schedule.countdown and job.remaining_us is not None:
        schedule = schedule.rescheduled(now + job.remaining_us)
        job = replace(job, spec=replace(job.spec, schedule=schedule))
    if job.last_fire_at is None:
        upcoming = schedule.first(job.created_at)
    else:
        upcoming = schedule.next_after(job.last_fire_at)
    live = upcoming is not None or _after_upstream(job.spec)
    state = JobState.ACTIVE if live else JobState.COMPLETED
    return replace(job, state=state, next_fire_at=upcoming, remaining_us=None, updated_at=now)


def enable(job: Job, now: Micros) -> Job:
    """Resume a paused job; an active one is left as it is (switching on is idempotent)."""
    if job.state is JobState.ACTIVE:
        return job
    if job.state is not JobState.PAUSED:
        raise IllegalTransition(f"the job is {job.state.value}: it cannot be enabled")
    return resume(job, now)


def disable(job: Job, now: Micros) -> Job:
    """Pause an active job; a paused one is left as it is (switching off is idempotent)."""
    if job.state is JobState.PAUSED:
        return job
    if job.state is not JobState.ACTIVE:
        raise IllegalTransition(f"the job is {job.state.value}: it cannot be disabled")
    return pause(job, now)


def cancel(job: Job, now: Micros) -> Job:
    if job.state in (JobState.COMPLETED, JobState.CANCELLED):
        raise IllegalTransition(f"the job is already {job.state}")
    return replace(job, state=JobState.CANCELLED, next_fire_at=None, remaining_us=None,
                   updated_at=now)
