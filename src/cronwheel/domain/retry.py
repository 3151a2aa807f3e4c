"""Retry decisions as a pure function of the policy, the attempt and a random draw."""

from __future__ import annotations

from cronwheel.domain.jobs import RetryPolicy
from cronwheel.domain.runs import AttemptOutcome, RunState
from cronwheel.domain.time import Micros


def backoff(policy: RetryPolicy, attempt: int, draw: float) -> Micros:
    """Delay before attempt `attempt + 1`; `draw` in [0, 1) spreads retries (jitter)."""
    base = policy.initial_backoff_us * policy.multiplier ** max(0, attempt - 1)
    base = min(base, policy.max_backoff_us)
    spread = 1.0 + policy.jitter * (2.0 * draw - 1.0)
    return max(0, round(base * spread))


def next_retry(policy: RetryPolicy, attempt: int, retryable: bool, draw: float) -> Micros | None:
    """None when the run should fail for good; else the delay before the next attempt."""
    if not retryable or attempt >= policy.max_attempts:
        return None
    return backoff(policy, attempt, draw)


def after_attempt(
    policy: RetryPolicy,
    attempt: int,
    outcome: AttemptOutcome,
    retryable: bool,
    finished: Micros,
    draw: float,
) -> tuple[RunState, Micros | None]:
    """What a run becomes after an attempt, and when its next attempt is due."""
    if outcome is AttemptOutcome.SUCCESS:
        return RunState.SUCCEEDED, None
    if outcome is AttemptOutcome.KILLED:
        return RunState.KILLED, None
    delay = next_retry(policy, attempt, retryable, draw)
    if delay is None:
        return RunState.FAILED, None
    return RunState.PENDING, finished + delay
