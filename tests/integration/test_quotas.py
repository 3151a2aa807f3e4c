"""A node's per-app limits over the in-memory stores: the app owning a namespace, an app's
limits as changed, and jobs held counted without a query per request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cronwheel.domain import jobs as rules
from cronwheel.domain.access import App, AppLimits
from cronwheel.domain.jobs import JobSpec
from cronwheel.domain.limits import LimitExceeded, RateLimited
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from cronwheel.quotas import Quotas
from cronwheel.store.memory import MemoryStore
from cronwheel.store.memory_apps import MemoryAppStore

S = US_PER_S
T0 = 1_800_000_000 * S
DEFAULTS = AppLimits(max_jobs=100, submits_per_second=10.0, submit_burst=10,
                     fires_per_second=5.0)


class CountingStore(MemoryStore):
    """The in-memory store, counting how often the held jobs are read."""

    reads = 0

    async def count_held_jobs(self) -> dict[str, int]:
        self.reads += 1
        return await super().count_held_jobs()


@pytest.fixture
async def world() -> AsyncIterator[tuple[Quotas, MemoryAppStore, CountingStore]]:
    apps, jobs = MemoryAppStore(), CountingStore()
    await jobs.start()
    await apps.create_app(App("team", T0, limits=AppLimits(max_jobs=3),
                              namespaces=("team", "team-*")))
    await apps.create_app(App("other", T0, namespaces=("team-b",)))
    yield Quotas(apps, jobs, DEFAULTS), apps, jobs
    await jobs.close()


async def add(store: MemoryStore, namespace: str, count: int) -> None:
    target = HttpTarget(url="http://127.0.0.1:9/")
    made = [rules.new_job(new_id(), JobSpec(namespace, f"k{new_id()}", OneShot(T0 + S), target),
                          T0) for _ in range(count)]
    await store.add_jobs(made, True)


async def test_the_most_specific_claim_names_the_app(world: tuple[Quotas, ...]) -> None:
    quotas = world[0]
    await quotas.fresh(T0)
    assert [quotas.app_of(n) for n in ("team", "team-a", "team-b", "nobody")] == [
        "team", "team", "other", "system"]


async def test_jobs_held_count_per_app_and_refuse_past_the_limit(
    world: tuple[Quotas, MemoryAppStore, CountingStore],
) -> None:
    quotas, _apps, jobs = world
    await add(jobs, "team-a", 2)
    await add(jobs, "team-b", 5)  # the other app's, not counted for team
    await quotas.check_held({"team": 1}, T0)
    with pytest.raises(LimitExceeded) as refused:
        await quotas.check_held({"team": 2}, T0)
    assert refused.value.field == "max_jobs"
    await quotas.check_held({"team-b": 50}, T0)  # other: the default, 100


async def test_held_jobs_are_read_at_most_once_a_second_and_adds_are_counted_between(
    world: tuple[Quotas, MemoryAppStore, CountingStore],
) -> None:
    quotas, _apps, jobs = world
    await quotas.check_held({"team": 1}, T0)
    await add(jobs, "team", 3)
    quotas.added({"team": 3})
    with pytest.raises(LimitExceeded):  # no new read within the second: this node's adds count
        await quotas.check_held({"team": 1}, T0 + S // 2)
    assert jobs.reads == 1
    await quotas.check_held({"team-b": 1}, T0 + S // 2)  # an app far from its limit: no read
    assert jobs.reads == 1


async def test_a_changed_limit_applies_after_invalidate(
    world: tuple[Quotas, MemoryAppStore, CountingStore],
) -> None:
    quotas, apps, _jobs = world
    await quotas.fresh(T0)
    assert quotas.quota("team").max_jobs == 3
    await apps.update_app(App("team", T0, limits=AppLimits(max_jobs=7)))
    quotas.invalidate()
    await quotas.fresh(T0)
    assert quotas.quota("team").max_jobs == 7


async def test_submits_take_from_the_apps_bucket_and_say_when_to_retry(
    world: tuple[Quotas, ...],
) -> None:
    quotas = world[0]
    await quotas.fresh(T0)
    team = quotas.quota("team")
    quotas.take_submits(team, 10, T0)
    with pytest.raises(RateLimited) as refused:
        quotas.take_submits(team, 5, T0)
    assert refused.value.retry_after == 1  # five tokens at ten a second
    quotas.take_submits(quotas.quota("other"), 10, T0)  # a bucket of its own
    quotas.take_submits(quotas.quota("system"), 10_000, T0)  # system: unlimited


async def test_fires_beyond_the_rate_get_later_slots(world: tuple[Quotas, ...]) -> None:
    quotas = world[0]
    await quotas.fresh(T0)
    slots = [quotas.fire_at("team", T0) for _ in range(7)]
    assert slots == [T0] * 5 + [T0 + S // 5, T0 + 2 * S // 5]
    assert [quotas.fire_at("nobody", T0) for _ in range(50)] == [T0] * 50
