"""How the tasks of an attempt add up (cronwheel.domain.tasks) and what a run becomes."""

from __future__ import annotations

import pytest

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.jobs import AlertPolicy, RetryPolicy
from cronwheel.domain.retry import after_attempt
from cronwheel.domain.runs import AttemptOutcome, RunState
from cronwheel.domain.tasks import TaskEnd, TaskState, summarise


def end(name: str, state: TaskState, code: int | None = None) -> TaskEnd:
    return TaskEnd(name, state, code, None)


def test_one_task_gives_its_own_outcome() -> None:
    assert summarise([end("w1", TaskState.SUCCEEDED, 0)], False).outcome is AttemptOutcome.SUCCESS
    failed = summarise([end("w1", TaskState.FAILED, 3)], False)
    assert (failed.outcome, failed.exit_code) == (AttemptOutcome.FAILURE, 3)
    assert failed.error == "w1: failed (exit 3)"
    assert summarise([end("w1", TaskState.TIMEOUT)], False).outcome is AttemptOutcome.TIMEOUT
    assert summarise([end("w1", TaskState.LOST)], False).outcome is AttemptOutcome.ABANDONED
    assert summarise([end("w1", TaskState.ERROR)], False).outcome is AttemptOutcome.ERROR


def test_broadcast_succeeds_only_when_every_worker_did() -> None:
    ends = [end("a", TaskState.SUCCEEDED, 0), end("b", TaskState.FAILED, 1),
            end("c", TaskState.LOST)]
    summary = summarise(ends, False)
    assert summary.outcome is AttemptOutcome.FAILURE  # a failure outranks a lost worker
    assert summary.error == "2 of 3 workers failed: b: failed (exit 1); c: lost"
    ok = summarise([end("a", TaskState.SUCCEEDED, 0), end("b", TaskState.SUCCEEDED, 0)], False)
    assert ok.outcome is AttemptOutcome.SUCCESS and ok.error is None


def test_a_kill_request_makes_the_attempt_killed_whatever_the_tasks_said() -> None:
    ends = [end("a", TaskState.SUCCEEDED, 0), end("b", TaskState.KILLED)]
    assert summarise(ends, True).outcome is AttemptOutcome.KILLED


def test_after_attempt_retries_within_the_policy_and_never_after_a_kill() -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff_us=1_000_000, jitter=0.0)
    assert after_attempt(policy, 1, AttemptOutcome.FAILURE, True, 10, 0.5) == (
        RunState.PENDING, 1_000_010)
    assert after_attempt(policy, 2, AttemptOutcome.FAILURE, True, 10, 0.5) == (
        RunState.FAILED, None)
    assert after_attempt(policy, 1, AttemptOutcome.KILLED, True, 10, 0.5) == (
        RunState.KILLED, None)
    assert after_attempt(policy, 1, AttemptOutcome.SUCCESS, True, 10, 0.5) == (
        RunState.SUCCEEDED, None)
    assert after_attempt(policy, 1, AttemptOutcome.ABANDONED, True, 10, 0.5)[0] is (
        RunState.PENDING)


def test_alert_policy_fires_at_each_multiple_of_its_threshold() -> None:
    policy = AlertPolicy(3, "http://127.0.0.1:9/alert")
    assert [n for n in range(10) if policy.due(n)] == [3, 6, 9]


@pytest.mark.parametrize(("after", "webhook", "field"), [
    (0, "http://x/alert", "alert.after"),
    (10_001, "http://x/alert", "alert.after"),
    (1, "ftp://x/alert", "alert.webhook"),
    (1, "http:///nohost", "alert.webhook"),
])
def test_alert_policy_names_its_bad_field(after: int, webhook: str, field: str) -> None:
    with pytest.raises(InvalidField) as info:
        AlertPolicy(after, webhook)
    assert info.value.field == field
