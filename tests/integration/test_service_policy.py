"""The service's policy, the same for every API: limits, schedules that can never fire, and
changes of many jobs at once. A real SQLite store, a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.clock import ManualClock
from cronwheel.domain import jobs as rules
from cronwheel.domain.cron import CronSchedule
from cronwheel.domain.errors import IllegalTransition, InvalidField, ItemErrors, NotFound
from cronwheel.domain.jobs import JobSpec, JobState, MisfirePolicy
from cronwheel.domain.schedules import OneShot, Schedule
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.service import Limits, Service, Submission
from cronwheel.store.sql import SqlStore

S = US_PER_S
T0 = 1_800_000_000 * S  # 2027-01-15
TARGET = HttpTarget("http://127.0.0.1:9/callback")
LIMITS = Limits(max_batch=3, max_payload_bytes=1_024)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    store = SqlStore(f"sqlite:///{tmp_path / 'policy.db'}")
    await store.start()
    try:
        yield Service(store, ManualClock(T0), limits=LIMITS)
    finally:
        await store.close()


def item(key: str, schedule: Schedule | None = None, payload: object = None,
         misfire: MisfirePolicy = MisfirePolicy.FIRE_ONCE) -> Submission:
    return Submission(JobSpec("ns", key, schedule or OneShot(T0 + 60 * S), TARGET, payload,
                              misfire=misfire, misfire_grace_us=10 * S))


def clock_of(service: Service) -> ManualClock:
    clock = service.clock
    assert isinstance(clock, ManualClock)
    return clock


async def test_payload_limit_on_submit_and_on_a_triggers_override(service: Service) -> None:
    big = "x" * 1_100
    with pytest.raises(ItemErrors) as refused:
        await service.submit([item("a"), item("b", payload=big), item("c", payload=[big])])
    assert [(i, e.field) for i, e in refused.value.items] == [(1, "payload"), (2, "payload")]
    assert refused.value.field == "payload"  # it reads as its first item
    assert await service.store.get_job("ns", "a") is None  # nothing written

    await service.submit([item("a")])
    with pytest.raises(InvalidField) as trigger:
        await service.trigger("ns", "a", {"blob": big}, override=True)
    assert trigger.value.field == "payload"
    assert await service.runs("ns", "a", None, 10) == []
    run = await service.trigger("ns", "a", {"small": 1}, override=True)
    assert run.payload_override == {"small": 1}


async def test_batch_limit_on_submit_and_on_change_jobs(service: Service) -> None:
    with pytest.raises(InvalidField) as too_many:
        await service.submit([item(f"k{i}") for i in range(4)])
    assert too_many.value.field == "jobs"
    with pytest.raises(InvalidField):
        await service.submit([])
    await service.submit([item(f"k{i}") for i in range(3)])
    with pytest.raises(InvalidField) as names:
        await service.change_jobs("ns", ["k0", "k1", "k2", "k3"], rules.disable)
    assert names.value.field == "jobs"
    # a name given twice counts once
    changed = await service.change_jobs("ns", ["k0", "k1", "k2", "k0"], rules.disable)
    assert [j.spec.key for j in changed] == ["k0", "k1", "k2"]


NEVER = [
    pytest.param(CronSchedule("0 0 0 1 1 ? 2020", "quartz"), MisfirePolicy.FIRE_ONCE,
                 id="cron whose only year is past"),
    pytest.param(CronSchedule("0 0 * * * ?", "quartz", end=T0 - S), MisfirePolicy.FIRE_ONCE,
                 id="cron whose end is past"),
    pytest.param(OneShot(T0 - 3_600 * S), MisfirePolicy.SKIP, id="past one-shot, skip"),
]


@pytest.mark.parametrize(("schedule", "misfire"), NEVER)
async def test_a_schedule_that_can_never_fire_is_refused(
    service: Service, schedule: Schedule, misfire: MisfirePolicy
) -> None:
    with pytest.raises(ItemErrors) as refused:
        await service.submit([item("ok"), item("dead", schedule, misfire=misfire)])
    [(index, error)] = refused.value.items
    assert (index, error.field) == (1, "schedule") and "never fire" in error.message
    assert await service.store.get_job("ns", "ok") is None


async def test_a_past_schedule_that_still_fires_is_accepted(service: Service) -> None:
    outcomes = await service.submit([
        item("late-once", OneShot(T0 - 3_600 * S)),  # fire_once: fires at once
        item("late-skip", OneShot(T0 - 5 * S), misfire=MisfirePolicy.SKIP),  # within grace
        item("hourly-skip", CronSchedule("0 0 * * * ?", "quartz", start=T0 - 7_200 * S),
             misfire=MisfirePolicy.SKIP),  # misses its first hour, fires the next
    ])
    assert all(o.created and o.job.state is JobState.ACTIVE for o in outcomes)


async def test_a_retry_after_the_schedule_passed_is_still_idempotent(service: Service) -> None:
    once = item("retried", OneShot(T0 + 30 * S), misfire=MisfirePolicy.SKIP)
    [first] = await service.submit([once])
    clock_of(service).advance(120 * S)  # the instant and its grace have passed
    [again] = await service.submit([once])
    assert not again.created and again.job.id == first.job.id
    with pytest.raises(ItemErrors):  # a new job with that schedule would never fire
        await service.submit([item("new", OneShot(T0 + 30 * S), misfire=MisfirePolicy.SKIP)])


async def test_change_jobs_is_all_or_nothing_and_lists_every_failure(service: Service) -> None:
    await service.submit([item("a"), item("b"), item("c")])
    await service.cancel("ns", "c")
    with pytest.raises(ItemErrors) as refused:
        await service.change_jobs("ns", ["a", "gone", "c"], rules.disable)
    assert [(i, type(e)) for i, e in refused.value.items] == [(1, NotFound),
                                                               (2, IllegalTransition)]
    assert (await service.get("ns", "a")).state is JobState.ACTIVE
    paused = await service.change_jobs("ns", ["a", "b"], rules.disable)
    assert [j.state for j in paused] == [JobState.PAUSED, JobState.PAUSED]
    resumed = await service.change_jobs("ns", ["a", "b"], rules.enable)
    assert [j.next_fire_at for j in resumed] == [T0 + 60 * S, T0 + 60 * S]
