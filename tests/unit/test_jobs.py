"""Job definitions, fingerprints and job state changes (cronwheel.domain.jobs)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import pytest

from cronwheel.domain.errors import DomainError, IllegalTransition, InvalidField, ItemErrors
from cronwheel.domain.jobs import (
    MAX_KEY_LENGTH,
    MAX_PRIORITY,
    Job,
    JobSpec,
    JobState,
    MisfirePolicy,
    RetryPolicy,
    cancel,
    check_fires,
    check_name,
    disable,
    enable,
    new_job,
    pause,
    resume,
)
from cronwheel.domain.schedules import OneShot, Schedule
from cronwheel.domain.targets import GrpcTarget, HttpTarget, target_from_dict
from cronwheel.domain.time import US_PER_S, Micros
from cronwheel.domain.worker_target import NO_JOB_TYPES
from tests.unit.schedules_for_tests import Every

S = US_PER_S
# 2026-11-21T18:00:00Z
T = 1_795_284_000 * S
TARGET = HttpTarget("https://example.com/hook")


@dataclass(frozen=True, slots=True)
class Never:
    """Test-only schedule with no occurrences at all."""

    kind: ClassVar[str] = "never"

    def next_after(self, instant: Micros) -> Micros | None:
        return None

    def first(self, created_at: Micros) -> Micros | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def describe(self) -> str:
        return "never"




def spec(schedule: Schedule | None = None, **changes: Any) -> JobSpec:
    base = JobSpec(
        namespace="default",
        key="invoice-42",
        schedule=schedule if schedule is not None else OneShot(at=T + 100 * S),
        target=TARGET,
        payload={"order": 42},
    )
    return replace(base, **changes)


def countdown_job(created: Micros, after: Micros) -> Job:
    return new_job("job-1", spec(OneShot(at=created + after, countdown=True)), created)


class TestSpecValidation:
    def test_a_valid_spec_keeps_its_values_and_defaults(self) -> None:
        made = spec()
        assert made.priority == 0
        assert made.retry == RetryPolicy(3, 1 * S, 300 * S, 2.0, 0.2)
        assert made.misfire is MisfirePolicy.FIRE_ONCE
        assert made.misfire_grace_us == 60 * S

    @pytest.mark.parametrize(
        "key", ["k", "x" * MAX_KEY_LENGTH, "orders/2026-11-21#1", "ключ-日本", "a b"]
    )
    def test_accepted_keys(self, key: str) -> None:
        assert spec(key=key).key == key

    def test_limits(self) -> None:
        assert (MAX_KEY_LENGTH, MAX_PRIORITY) == (255, 1_000_000)

    @pytest.mark.parametrize(
        "key",
        ["", "x" * 256, "a\nb", "a\x00b", "\tkey", "key\r", "a\x1bb", "a\x7fb", "\x1f"],
        ids=["empty", "256", "newline", "nul", "tab", "cr", "esc", "del", "unit-sep"],
    )
    def test_rejected_keys(self, key: str) -> None:
        with pytest.raises(InvalidField) as info:
            spec(key=key)
        assert info.value.field == "key"

    @pytest.mark.parametrize("namespace", ["", "n" * 256, "ns\n", "\x00"])
    def test_rejected_namespaces(self, namespace: str) -> None:
        with pytest.raises(InvalidField) as info:
            spec(namespace=namespace)
        assert info.value.field == "namespace"

    @pytest.mark.parametrize("value", [None, 5, b"key"])
    def test_name_must_be_text(self, value: Any) -> None:
        with pytest.raises(InvalidField) as info:
            check_name(value, "key")
        assert info.value.field == "key"

    @pytest.mark.parametrize("priority", [MAX_PRIORITY, -MAX_PRIORITY, 0, 7])
    def test_accepted_priorities(self, priority: int) -> None:
        assert spec(priority=priority).priority == priority

    @pytest.mark.parametrize("priority", [1_000_001, -1_000_001, 10**12])
    def test_rejected_priorities(self, priority: int) -> None:
        with pytest.raises(InvalidField) as info:
            spec(priority=priority)
        assert info.value.field == "priority"

    def test_zero_grace_is_allowed(self) -> None:
        assert spec(misfire_grace_us=0).misfire_grace_us == 0

    @pytest.mark.parametrize("grace", [-1, -60 * S])
    def test_negative_grace_is_rejected(self, grace: int) -> None:
        with pytest.raises(InvalidField) as info:
            spec(misfire_grace_us=grace)
        assert info.value.field == "misfire_grace"


class TestRetryPolicyValidation:
    @pytest.mark.parametrize(
        "policy",
        [
            RetryPolicy(max_attempts=1),
            RetryPolicy(max_attempts=100),
            RetryPolicy(initial_backoff_us=0),
            RetryPolicy(initial_backoff_us=5 * S, max_backoff_us=5 * S),
            RetryPolicy(multiplier=1.0),
            RetryPolicy(multiplier=10.0),
            RetryPolicy(jitter=0.0),
            RetryPolicy(jitter=1.0),
        ],
    )
    def test_bounds_are_inclusive(self, policy: RetryPolicy) -> None:
        assert isinstance(policy, RetryPolicy)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"max_attempts": 0}, "retry.max_attempts"),
            ({"max_attempts": 101}, "retry.max_attempts"),
            ({"max_attempts": -3}, "retry.max_attempts"),
            ({"initial_backoff_us": -1}, "retry.initial_backoff"),
            ({"initial_backoff_us": 301 * S}, "retry.initial_backoff"),
            ({"initial_backoff_us": 2 * S, "max_backoff_us": 1 * S}, "retry.initial_backoff"),
            ({"multiplier": 0.99}, "retry.multiplier"),
            ({"multiplier": 10.01}, "retry.multiplier"),
            ({"multiplier": 0.0}, "retry.multiplier"),
            ({"multiplier": float("nan")}, "retry.multiplier"),
            ({"jitter": -0.01}, "retry.jitter"),
            ({"jitter": 1.01}, "retry.jitter"),
            ({"jitter": float("nan")}, "retry.jitter"),
        ],
    )
    def test_rejected(self, kwargs: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidField) as info:
            RetryPolicy(**kwargs)
        assert info.value.field == field


class TestFingerprint:
    def test_equal_specs_have_equal_fingerprints(self) -> None:
        one = spec()
        two = JobSpec(
            namespace="default",
            key="invoice-42",
            schedule=OneShot(at=T + 100 * S),
            target=HttpTarget("https://example.com/hook"),
            payload={"order": 42},
        )
        assert one == two
        assert one.fingerprint() == two.fingerprint()

    def test_payload_key_order_does_not_matter(self) -> None:
        one = spec(payload={"a": 1, "b": {"y": 2, "x": 3}})
        two = spec(payload={"b": {"x": 3, "y": 2}, "a": 1})
        assert one.fingerprint() == two.fingerprint()

    def test_header_order_in_the_submitted_target_does_not_matter(self) -> None:
        base = {"kind": "http", "url": "https://e.com"}
        one = spec(target=target_from_dict({**base, "headers": {"A": "1", "B": "2"}},
                                           job_types=NO_JOB_TYPES))
        two = spec(target=target_from_dict({**base, "headers": {"B": "2", "A": "1"}},
                                           job_types=NO_JOB_TYPES))
        assert one.fingerprint() == two.fingerprint()

    def test_is_32_hex_characters(self) -> None:
        value = spec().fingerprint()
        assert len(value) == 32
        int(value, 16)

    def test_is_stable_across_releases(self) -> None:
        # Fingerprints are stored with each job; changing the canonical form would turn every
        # idempotent re-submit of an existing job into a conflict.
        made = JobSpec("default", "k", OneShot(at=0), HttpTarget("http://x"))
        canonical = (
            b'{"misfire":["fire_once",60000000],"payload":null,"priority":0,'
            b'"retry":[3,1000000,300000000,2.0,0.2],'
            b'"schedule":{"at":"1970-01-01T00:00:00Z","countdown":false,"kind":"once"},'
            b'"target":{"headers":{},"kind":"http","method":"POST","timeout":10.0,'
            b'"url":"http://x"}}'
        )
        assert made.fingerprint() == hashlib.sha256(canonical).hexdigest()[:32]

    @pytest.mark.parametrize(
        "changes",
        [
            {"schedule": OneShot(at=T + 100 * S + 1)},
            {"schedule": OneShot(at=T + 100 * S, countdown=True)},
            {"target": HttpTarget("https://example.com/other")},
            {"target": HttpTarget("https://example.com/hook", method="PUT")},
            {"target": HttpTarget("https://example.com/hook", headers=(("A", "1"),))},
            {"target": HttpTarget("https://example.com/hook", timeout=11.0)},
            {"target": GrpcTarget("example.com:443")},
            {"payload": {"order": 43}},
            {"payload": None},
            {"payload": [42]},
            {"payload": "42"},
            {"priority": 1},
            {"retry": RetryPolicy(max_attempts=4)},
            {"retry": RetryPolicy(initial_backoff_us=2 * S)},
            {"retry": RetryPolicy(max_backoff_us=301 * S)},
            {"retry": RetryPolicy(multiplier=3.0)},
            {"retry": RetryPolicy(jitter=0.1)},
            {"misfire": MisfirePolicy.FIRE_ALL},
            {"misfire": MisfirePolicy.SKIP},
            {"misfire_grace_us": 61 * S},
        ],
        ids=lambda changes: next(iter(changes)),
    )
    def test_any_definition_change_changes_it(self, changes: dict[str, Any]) -> None:
        assert spec(**changes).fingerprint() != spec().fingerprint()

    def test_numerically_equal_retry_settings_give_the_same_fingerprint(self) -> None:
        # A JSON client may send "multiplier": 2 for 2.0 and "jitter": 0 for 0.0 (JavaScript
        # always does). The specs are equal, so a re-submit must not look like a conflict.
        as_float = spec(retry=RetryPolicy(multiplier=2.0, jitter=0.0))
        as_int = spec(retry=RetryPolicy(multiplier=2, jitter=0))
        assert as_float == as_int
        assert as_float.fingerprint() == as_int.fingerprint()


class TestNewJob:
    def test_future_one_shot(self) -> None:
        made = spec(OneShot(at=T + 100 * S))
        assert new_job("job-1", made, T) == Job(
            id="job-1",
            spec=made,
            state=JobState.ACTIVE,
            next_fire_at=T + 100 * S,
            created_at=T,
            updated_at=T,
            remaining_us=None,
            last_fire_at=None,
            fingerprint=made.fingerprint(),
        )

    def test_fingerprint_defaults_to_the_spec_and_can_be_given(self) -> None:
        made = spec()
        assert new_job("job-1", made, T).fingerprint == made.fingerprint()
        assert new_job("job-1", made, T, fingerprint="body-hash").fingerprint == "body-hash"

    def test_past_one_shot_is_active_and_due_at_its_instant(self) -> None:
        job = new_job("job-1", spec(OneShot(at=T - 3_600 * S)), T)
        assert job.state is JobState.ACTIVE
        assert job.next_fire_at == T - 3_600 * S

    def test_schedule_without_occurrences_is_completed(self) -> None:
        job = new_job("job-1", spec(Never()), T)
        assert job.state is JobState.COMPLETED
        assert job.next_fire_at is None

    def test_repeating_schedule_starts_at_its_first_occurrence(self) -> None:
        job = new_job("job-1", spec(Every(start=T - 25 * S, period=10 * S)), T)
        assert job.state is JobState.ACTIVE
        assert job.next_fire_at == T + 5 * S


class TestPauseResume:
    def test_pause_a_plain_one_shot(self) -> None:
        job = new_job("job-1", spec(OneShot(at=T + 100 * S)), T)
        paused = pause(job, T + 30 * S)
        assert paused.state is JobState.PAUSED
        assert paused.next_fire_at is None
        assert paused.remaining_us is None
        assert paused.updated_at == T + 30 * S
        assert paused.created_at == T
        assert paused.spec == job.spec

    def test_resume_a_plain_one_shot_keeps_its_instant(self) -> None:
        job = new_job("job-1", spec(OneShot(at=T + 100 * S)), T)
        resumed = resume(pause(job, T + 30 * S), T + 500 * S)
        assert resumed.state is JobState.ACTIVE
        assert resumed.next_fire_at == T + 100 * S  # now in the past: fires on the next pass
        assert resumed.spec == job.spec
        assert resumed.fingerprint == job.fingerprint
        assert resumed.updated_at == T + 500 * S

    def test_pausing_a_countdown_keeps_its_remaining_time(self) -> None:
        job = countdown_job(created=T, after=100 * S)
        assert job.next_fire_at == T + 100 * S
        paused = pause(job, T + 30 * S)
        assert paused.state is JobState.PAUSED
        assert paused.next_fire_at is None
        assert paused.remaining_us == 70 * S

    def test_resumed_countdown_counts_down_from_the_resume_instant(self) -> None:
        job = countdown_job(created=T, after=100 * S)
        resumed = resume(pause(job, T + 30 * S), T + 500 * S)
        assert resumed.state is JobState.ACTIVE
        assert resumed.next_fire_at == T + 570 * S
        assert resumed.remaining_us is None
        assert resumed.updated_at == T + 500 * S
        assert resumed.created_at == T
        assert resumed.spec.schedule == OneShot(at=T + 570 * S, countdown=True)
        # The job's identity for idempotent re-submits is what the client sent, not the new
        # due time: re-submitting the original definition must still match.
        assert resumed.fingerprint == job.fingerprint

    def test_countdown_paused_twice(self) -> None:
        job = countdown_job(created=T, after=100 * S)
        job = resume(pause(job, T + 30 * S), T + 500 * S)  # 70 s left -> due T+570
        job = pause(job, T + 520 * S)  # 50 s left
        assert job.remaining_us == 50 * S
        job = resume(job, T + 1_000 * S)
        assert job.next_fire_at == T + 1_050 * S

    def test_overdue_countdown_has_nothing_left_and_fires_on_resume(self) -> None:
        job = countdown_job(created=T, after=100 * S)
        paused = pause(job, T + 150 * S)
        assert paused.remaining_us == 0
        assert resume(paused, T + 200 * S).next_fire_at == T + 200 * S

    def test_resume_a_repeating_job_continues_after_the_last_fired_occurrence(self) -> None:
        job = new_job("job-1", spec(Every(start=T, period=10 * S)), T)
        job = replace(job, last_fire_at=T + 20 * S, next_fire_at=T + 30 * S)
        resumed = resume(pause(job, T + 25 * S), T + 100 * S)
        assert resumed.state is JobState.ACTIVE
        assert resumed.next_fire_at == T + 30 * S  # the misfire policy decides how to catch up

    def test_resume_a_never_fired_repeating_job_starts_from_its_first_occurrence(self) -> None:
        job = new_job("job-1", spec(Every(start=T + 5 * S, period=10 * S)), T)
        resumed = resume(pause(job, T + 1 * S), T + 2 * S)
        assert resumed.next_fire_at == T + 5 * S


class TestCancel:
    def test_cancel_an_active_job(self) -> None:
        job = new_job("job-1", spec(), T)
        cancelled = cancel(job, T + 1)
        assert cancelled.state is JobState.CANCELLED
        assert cancelled.next_fire_at is None
        assert cancelled.updated_at == T + 1

    def test_cancel_a_paused_countdown(self) -> None:
        paused = pause(countdown_job(created=T, after=100 * S), T + 30 * S)
        cancelled = cancel(paused, T + 40 * S)
        assert cancelled.state is JobState.CANCELLED
        assert cancelled.next_fire_at is None
        assert cancelled.remaining_us is None


def _in_state(state: JobState) -> Job:
    job = new_job("job-1", spec(), T)
    return replace(job, state=state, next_fire_at=None if state is not JobState.ACTIVE else T)


class TestIllegalTransitions:
    @pytest.mark.parametrize(
        ("change", "state"),
        [
            (resume, JobState.ACTIVE),
            (resume, JobState.COMPLETED),
            (resume, JobState.CANCELLED),
            (pause, JobState.PAUSED),
            (pause, JobState.COMPLETED),
            (pause, JobState.CANCELLED),
            (cancel, JobState.COMPLETED),
            (cancel, JobState.CANCELLED),
        ],
        ids=lambda value: getattr(value, "__name__", str(value)),
    )
    def test_refused(self, change: Any, state: JobState) -> None:
        job = _in_state(state)
        with pytest.raises(IllegalTransition) as info:
            change(job, T + 1)
        assert info.value.code == "illegal_state"
        assert str(state) in info.value.message

    def test_pause_twice_via_real_transitions(self) -> None:
        paused = pause(new_job("job-1", spec(), T), T + 1)
        with pytest.raises(IllegalTransition):
            pause(paused, T + 2)

    def test_cancel_then_pause_or_cancel_again(self) -> None:
        cancelled = cancel(new_job("job-1", spec(), T), T + 1)
        with pytest.raises(IllegalTransition):
            pause(cancelled, T + 2)
        with pytest.raises(IllegalTransition):
            cancel(cancelled, T + 2)
        with pytest.raises(IllegalTransition):
            resume(cancelled, T + 2)


class TestErrors:
    def test_codes_and_fields(self) -> None:
        error = InvalidField("bad", "target.url")
        assert isinstance(error, DomainError)
        assert (error.code, error.field, error.message, str(error)) == (
            "invalid_argument",
            "target.url",
            "bad",
            "bad",
        )
        assert IllegalTransition("no").code == "illegal_state"
        assert IllegalTransition("no").field is None

    def test_item_errors_read_as_their_first_item(self) -> None:
        first, second = IllegalTransition("no", "state"), InvalidField("big", "payload")
        error = ItemErrors([(2, first), (5, second)])
        assert (error.code, error.field, error.message) == ("illegal_state", "state", "no")
        assert error.first is first and error.items == [(2, first), (5, second)]


class TestCheckFires:
    def test_a_schedule_without_occurrences_never_fires(self) -> None:
        with pytest.raises(InvalidField) as info:
            check_fires(spec(Never()), T)
        assert info.value.field == "schedule" and "never fire" in info.value.message

    def test_a_past_one_shot_fires_at_once_unless_misfires_are_skipped(self) -> None:
        past = OneShot(at=T - 3_600 * S)
        check_fires(spec(past), T)  # fire_once: fires late, once
        check_fires(spec(past, misfire=MisfirePolicy.FIRE_ALL), T)
        with pytest.raises(InvalidField) as info:
            check_fires(spec(past, misfire=MisfirePolicy.SKIP), T)
        assert info.value.field == "schedule" and "skip" in info.value.message

    def test_skip_within_the_grace_or_with_later_occurrences_fires(self) -> None:
        check_fires(spec(OneShot(at=T - 59 * S), misfire=MisfirePolicy.SKIP), T)  # grace 60 s
        every = Every(start=T - 3_600 * S, period=10 * S)
        check_fires(spec(every, misfire=MisfirePolicy.SKIP), T)


class TestEnableDisable:
    def test_enable_resumes_a_paused_job_and_leaves_an_active_one(self) -> None:
        job = new_job("job-1", spec(), T)
        assert enable(job, T + 1) is job
        back = enable(disable(job, T + 1), T + 2)
        assert back.state is JobState.ACTIVE and back.next_fire_at == T + 100 * S

    def test_disable_pauses_an_active_job_and_leaves_a_paused_one(self) -> None:
        paused = disable(new_job("job-1", spec(), T), T + 1)
        assert paused.state is JobState.PAUSED and disable(paused, T + 2) is paused

    @pytest.mark.parametrize("switch", [enable, disable])
    def test_cancelled_or_completed_jobs_cannot_be_switched(
        self, switch: Callable[[Job, Micros], Job]
    ) -> None:
        word = "enabled" if switch is enable else "disabled"
        for job in (cancel(new_job("job-1", spec(), T), T), new_job("job-1", spec(Never()), T)):
            with pytest.raises(IllegalTransition) as info:
                switch(job, T + 1)
            assert info.value.message == f"the job is {job.state.value}: it cannot be {word}"
