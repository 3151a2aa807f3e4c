"""The Sentinel dialect's ids over SQLite and PostgreSQL: jobIds count up, a run keeps the
taskId it was first given, and the fields Sentinel keeps are filterable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.contracts import SentinelStore
from cronwheel.domain.errors import NotFound
from cronwheel.domain.sentinel import SentinelJob
from cronwheel.domain.time import US_PER_S
from cronwheel.store.sql import SqlStore
from tests.stores import open_store

T0 = 1_800_000_000 * US_PER_S


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SentinelStore]:
    async with open_store(request.param, tmp_path) as opened:
        assert isinstance(opened, SqlStore)
        yield opened.sentinel


def row(app: str = "etl", department: str = "data", biz: str = ",1,2,") -> SentinelJob:
    return SentinelJob(0, app, app, "orders", department, biz, {"jobType": "shell"}, T0)


async def test_job_ids_count_up_and_rows_read_back(store: SentinelStore) -> None:
    first = await store.add_job(row())
    second = await store.add_job(row(department="ops", biz=",3,"))
    assert second.id > first.id > 0
    assert await store.get_job(first.id) == first
    await store.update_job(SentinelJob(first.id, "etl", "etl", "renamed", "data", ",1,",
                                       {"jobType": "hive"}, T0))
    changed = await store.get_job(first.id)
    assert changed is not None and (changed.name, changed.info) == ("renamed", {"jobType": "hive"})
    with pytest.raises(NotFound):
        await store.update_job(SentinelJob(999_999, "etl", "etl", "x", "", "", {}, T0))
    await store.add_job(row(app="other"))
    assert [j.id for j in await store.list_jobs("etl", None, None, 0, 10)] == [first.id, second.id]
    assert [j.id for j in await store.list_jobs("etl", "ops", None, 0, 10)] == [second.id]
    assert [j.id for j in await store.list_jobs("etl", None, "1", 0, 10)] == [first.id]
    assert [j.id for j in await store.list_jobs("etl", None, None, first.id, 10)] == [second.id]
    await store.drop_job(first.id)
    assert await store.get_job(first.id) is None
    last = (await store.list_jobs("other", None, None, 0, 10))[-1]
    await store.drop_job(last.id)
    assert (await store.add_job(row())).id > last.id  # a dropped id is never given again


async def test_a_run_keeps_the_task_id_it_was_first_given(store: SentinelStore) -> None:
    first = await store.task_ids(7, ["run-a", "run-b"])
    again = await store.task_ids(7, ["run-b", "run-c", "run-a"])
    assert {k: again[k] for k in first} == first
    assert len(set(again.values())) == 3
    assert await store.task(again["run-c"]) == ("run-c", 7)
    assert await store.task(424_242) is None
    assert await store.task_ids(7, []) == {}
