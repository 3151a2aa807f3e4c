"""Retry delays and the decision to retry (cronwheel.domain.retry)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.jobs import RetryPolicy
from cronwheel.domain.retry import backoff, next_retry
from cronwheel.domain.time import US_PER_S

S = US_PER_S
DEFAULT = RetryPolicy()  # 3 attempts, 1 s doubling up to 300 s, +/-20 %
NO_JITTER = 0.5  # the draw that puts the delay exactly on its base


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempt", "expected"),
        [
            (0, 1 * S),
            (1, 1 * S),
            (2, 2 * S),
            (3, 4 * S),
            (4, 8 * S),
            (8, 128 * S),
            (9, 256 * S),
            (10, 300 * S),  # 512 s capped
            (50, 300 * S),
            (100, 300 * S),
        ],
    )
    def test_grows_by_the_multiplier_up_to_the_cap(self, attempt: int, expected: int) -> None:
        assert backoff(DEFAULT, attempt, NO_JITTER) == expected

    def test_other_multiplier_and_start(self) -> None:
        policy = RetryPolicy(initial_backoff_us=500_000, max_backoff_us=60 * S, multiplier=3.0)
        got = [backoff(policy, attempt, NO_JITTER) for attempt in range(1, 7)]
        assert got == [500_000, 1_500_000, 4_500_000, 13_500_000, 40_500_000, 60 * S]

    def test_fractional_multiplier(self) -> None:
        policy = RetryPolicy(initial_backoff_us=1 * S, multiplier=1.5, jitter=0.0)
        assert backoff(policy, 3, 0.0) == 2_250_000

    def test_multiplier_one_is_constant(self) -> None:
        policy = RetryPolicy(initial_backoff_us=7 * S, multiplier=1.0)
        assert {backoff(policy, attempt, NO_JITTER) for attempt in range(1, 30)} == {7 * S}

    def test_zero_initial_backoff_retries_at_once(self) -> None:
        policy = RetryPolicy(initial_backoff_us=0)
        assert backoff(policy, 5, 0.99) == 0

    @pytest.mark.parametrize(
        ("attempt", "draw", "expected"),
        [
            (1, 0.0, 800_000),  # base * (1 - 0.2)
            (1, 1.0, 1_200_000),  # base * (1 + 0.2)
            (1, 0.25, 900_000),
            (3, 0.0, 3_200_000),
            (3, 0.75, 4_400_000),
            (20, 0.0, 240 * S),  # jitter applies around the capped base
            (20, 1.0, 360 * S),
        ],
    )
    def test_jitter_bounds(self, attempt: int, draw: float, expected: int) -> None:
        assert backoff(DEFAULT, attempt, draw) == expected

    def test_no_jitter_ignores_the_draw(self) -> None:
        policy = RetryPolicy(jitter=0.0)
        assert {backoff(policy, 2, draw) for draw in (0.0, 0.3, 0.999)} == {2 * S}

    def test_full_jitter_spans_zero_to_double(self) -> None:
        policy = RetryPolicy(jitter=1.0)
        assert backoff(policy, 1, 0.0) == 0
        assert backoff(policy, 1, 1.0) == 2 * S

    @given(
        initial=st.integers(min_value=0, max_value=600 * S),
        extra=st.integers(min_value=0, max_value=3_600 * S),
        multiplier=st.floats(min_value=1.0, max_value=10.0),
        jitter=st.floats(min_value=0.0, max_value=1.0),
        attempt=st.integers(min_value=1, max_value=100),
        draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    )
    def test_stays_within_the_jitter_band(
        self,
        initial: int,
        extra: int,
        multiplier: float,
        jitter: float,
        attempt: int,
        draw: float,
    ) -> None:
        policy = RetryPolicy(
            initial_backoff_us=initial,
            max_backoff_us=initial + extra,
            multiplier=multiplier,
            jitter=jitter,
        )
        base = min(initial * multiplier ** (attempt - 1), initial + extra)
        delay = backoff(policy, attempt, draw)
        assert isinstance(delay, int)
        assert math.floor(base * (1 - jitter)) <= delay <= math.ceil(base * (1 + jitter))
        assert delay <= math.ceil((initial + extra) * (1 + jitter))

    @given(
        attempt=st.integers(min_value=1, max_value=99),
        draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    )
    def test_never_shrinks_with_more_attempts(self, attempt: int, draw: float) -> None:
        assert backoff(DEFAULT, attempt + 1, draw) >= backoff(DEFAULT, attempt, draw)

    @given(
        attempt=st.integers(min_value=1, max_value=100),
        low=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
        high=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    )
    def test_never_shrinks_with_a_bigger_draw(self, attempt: int, low: float, high: float) -> None:
        low, high = sorted((low, high))
        assert backoff(DEFAULT, attempt, low) <= backoff(DEFAULT, attempt, high)


class TestNextRetry:
    def test_retries_until_the_last_attempt(self) -> None:
        assert next_retry(DEFAULT, 1, True, NO_JITTER) == 1 * S
        assert next_retry(DEFAULT, 2, True, NO_JITTER) == 2 * S
        assert next_retry(DEFAULT, 3, True, NO_JITTER) is None

    def test_never_beyond_max_attempts(self) -> None:
        assert next_retry(DEFAULT, 4, True, NO_JITTER) is None
        assert next_retry(DEFAULT, 100, True, NO_JITTER) is None

    def test_a_single_attempt_policy_never_retries(self) -> None:
        assert next_retry(RetryPolicy(max_attempts=1), 1, True, NO_JITTER) is None

    def test_not_retryable_fails_at_once(self) -> None:
        assert next_retry(DEFAULT, 1, False, NO_JITTER) is None
        assert next_retry(RetryPolicy(max_attempts=100), 1, False, 0.0) is None

    def test_jitter_is_applied(self) -> None:
        assert next_retry(DEFAULT, 2, True, 0.0) == 1_600_000
        assert next_retry(DEFAULT, 2, True, 1.0) == 2_400_000

    @given(
        max_attempts=st.integers(min_value=1, max_value=100),
        attempt=st.integers(min_value=1, max_value=200),
        draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    )
    def test_retries_exactly_while_attempts_remain(
        self, max_attempts: int, attempt: int, draw: float
    ) -> None:
        policy = RetryPolicy(max_attempts=max_attempts)
        delay = next_retry(policy, attempt, True, draw)
        if attempt < max_attempts:
            assert delay == backoff(policy, attempt, draw)
        else:
            assert delay is None
