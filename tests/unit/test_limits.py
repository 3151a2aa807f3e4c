"""Per-app limits, pure: which value applies, the bucket's arithmetic, a schedule's shortest
gap and the shortest-repeat check naming the schedule (or the union item) at fault."""

from __future__ import annotations

from typing import Any

import pytest

from cronwheel.domain.access import SYSTEM_APP, AppLimits
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.limits import (
    Bucket,
    TooFrequent,
    check_interval,
    quota_for,
    retry_after_seconds,
    shortest_gap,
)
from cronwheel.domain.schedules import Schedule, schedule_from_dict
from cronwheel.domain.time import US_PER_S, parse_instant

S = US_PER_S
NOW = parse_instant("2026-06-01T00:00:00Z")
DEFAULTS = AppLimits(max_jobs=1_000, submits_per_second=100.0, submit_burst=200,
                     max_batch=10_000, max_payload_bytes=65_536, min_interval_seconds=1.0,
                     fires_per_second=50.0)


def schedule(**data: Any) -> Schedule:
    return schedule_from_dict(data, NOW)


# -- which value applies -----------------------------------------------------------------------


def test_an_apps_override_wins_and_the_rest_are_the_servers_defaults() -> None:
    quota = quota_for("team", AppLimits(max_jobs=5, min_interval_seconds=60.0), DEFAULTS)
    assert quota.max_jobs == 5 and quota.min_interval_seconds == 60.0
    assert quota.submits_per_second == 100.0 and quota.submit_burst == 200
    assert quota.fires_per_second == 50.0 and quota.max_batch == 10_000


def test_an_override_may_also_raise_a_limit_above_the_default() -> None:
    assert quota_for("big", AppLimits(max_jobs=5_000), DEFAULTS).max_jobs == 5_000


def test_the_system_app_gets_only_the_server_wide_request_caps_unless_told() -> None:
    free = quota_for(SYSTEM_APP, AppLimits(), DEFAULTS)
    assert (free.max_jobs, free.submits_per_second, free.min_interval_seconds,
            free.fires_per_second) == (None, None, None, None)
    assert (free.max_batch, free.max_payload_bytes) == (10_000, 65_536)
    assert quota_for(SYSTEM_APP, AppLimits(), DEFAULTS, system_limited=True).max_jobs == 1_000
    # its own overrides still apply
    assert quota_for(SYSTEM_APP, AppLimits(fires_per_second=3.0), DEFAULTS).fires_per_second == 3


def test_the_burst_is_a_seconds_worth_when_the_server_names_none() -> None:
    assert quota_for("a", AppLimits(submits_per_second=2.5), AppLimits()).burst == 3


# -- the bucket --------------------------------------------------------------------------------


def test_a_full_bucket_lets_a_burst_through_then_refuses_with_the_wait() -> None:
    bucket = Bucket(rate=2.0, burst=4)
    assert [bucket.take(1, NOW) for _ in range(4)] == [0, 0, 0, 0]
    assert bucket.take(1, NOW) == S // 2  # one token every half second
    assert bucket.take(1, NOW + S // 2) == 0
    assert bucket.take(3, NOW + S // 2) == 3 * S // 2


def test_a_refused_take_takes_nothing() -> None:
    bucket = Bucket(rate=1.0, burst=2)
    assert bucket.take(2, NOW) == 0
    assert bucket.take(2, NOW + S // 2) > 0
    assert bucket.take(1, NOW + S) == 0  # the refused take of two did not spend the refill


def test_the_bucket_refills_to_its_burst_and_no_further() -> None:
    bucket = Bucket(rate=10.0, burst=5)
    assert bucket.take(5, NOW) == 0
    later = NOW + 3_600 * S
    assert bucket.take(5, later) == 0 and bucket.take(1, later) > 0


def test_reserve_spaces_fires_at_the_rate_after_the_burst() -> None:
    bucket = Bucket(rate=4.0, burst=4)
    slots = [bucket.reserve(NOW) for _ in range(8)]
    assert slots == [NOW] * 4 + [NOW + k * S // 4 for k in (1, 2, 3, 4)]


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_seconds(w) for w in (1, S, S + 1, 5 * S // 2)] == [1, 1, 2, 3]


# -- a schedule's shortest gap -----------------------------------------------------------------


@pytest.mark.parametrize(("data", "gap"), [
    ({"kind": "cron", "expr": "* * * * * ?"}, 1),
    ({"kind": "cron", "expr": "*/10 * * * * ?"}, 10),
    ({"kind": "cron", "expr": "0 0 9 ? * MON-FRI"}, 86_400),
    ({"kind": "cron", "expr": "0,1 0 12 * * ?"}, 1),  # the short gap hides among long ones
    ({"kind": "rate", "every": "5m"}, 300),
    ({"kind": "simple", "interval": 2, "unit": "second", "repeat": -1}, 2),
    ({"kind": "iso8601", "expr": "R5/2026-06-01T01:00:00Z/PT30S"}, 30),
])
def test_the_shortest_gap_of_each_repeating_kind(data: dict[str, Any], gap: int) -> None:
    assert shortest_gap(schedule(**data), NOW) == gap * S


def test_a_schedule_that_fires_once_has_no_gap() -> None:
    assert shortest_gap(schedule(kind="once", at="2026-06-02T00:00:00Z"), NOW) is None
    assert shortest_gap(schedule(kind="iso8601", expr="R1/2026-06-01T01:00:00Z/PT1S"), NOW) is None


def test_a_union_gaps_between_its_items_too() -> None:
    union = schedule(kind="union", items=[
        {"kind": "cron", "expr": "0 0 * * * ?"}, {"kind": "cron", "expr": "5 0 * * * ?"}])
    assert shortest_gap(union, NOW) == 5 * S


# -- the shortest-repeat check -----------------------------------------------------------------


def test_cron_every_second_is_refused_under_a_ten_second_limit_naming_the_schedule() -> None:
    with pytest.raises(TooFrequent) as refused:
        check_interval(schedule(kind="cron", expr="* * * * * ?"), 10.0, NOW)
    assert refused.value.field == "schedule"
    assert "every 1 s" in refused.value.message and "min_interval_seconds" in refused.value.message
    assert isinstance(refused.value, InvalidField)  # a 422 wherever InvalidField is one
    check_interval(schedule(kind="cron", expr="*/10 * * * * ?"), 10.0, NOW)


def test_no_limit_checks_nothing_and_one_shots_always_pass() -> None:
    check_interval(schedule(kind="cron", expr="* * * * * ?"), None, NOW)
    check_interval(schedule(kind="once", after=1), 3_600.0, NOW)


def test_a_union_item_that_repeats_too_often_is_named() -> None:
    union = schedule(kind="union", items=[
        {"kind": "cron", "expr": "0 0 * * * ?"}, {"kind": "rate", "every": "1s"}])
    with pytest.raises(TooFrequent) as refused:
        check_interval(union, 60.0, NOW, "schedule")
    assert refused.value.field == "schedule.items[1]"


def test_two_union_items_too_close_together_are_refused_as_the_whole_schedule() -> None:
    union = schedule(kind="union", items=[
        {"kind": "cron", "expr": "0 0 * * * ?"}, {"kind": "cron", "expr": "5 0 * * * ?"}])
    with pytest.raises(TooFrequent) as refused:
        check_interval(union, 60.0, NOW)
    assert refused.value.field == "schedule"
