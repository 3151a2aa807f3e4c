"""The AuditStore contract over memory, SQLite and PostgreSQL, and (SQL) the promise that a
change and its audit entry commit together or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.contracts import CURRENT_CHANGE, AuditStore, PendingChange
from cronwheel.domain import jobs as rules
from cronwheel.domain.audit import AuditCursor, AuditEntry, AuditFilter
from cronwheel.domain.errors import NotFound
from cronwheel.domain.jobs import Job, JobSpec
from cronwheel.domain.schedules import OneShot
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import US_PER_S
from cronwheel.ids import new_id
from cronwheel.store.memory import MemoryStore
from cronwheel.store.rows import job_values
from cronwheel.store.sql import SqlStore
from cronwheel.store.tables import jobs
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S


def entry(at: int, action: str = "create_job", outcome: str = "ok", app: str = "billing",
          namespace: str | None = "billing", prefix: str = "abcd1234") -> AuditEntry:
    return AuditEntry(id=new_id(), at=at, action=action, outcome=outcome,
                      status=200 if outcome == "ok" else 403, app=app, token_prefix=prefix,
                      role="operator", address="127.0.0.1", namespace=namespace,
                      target="nightly", detail={"method": "POST", "path": "/v1/jobs"})


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest,
                tmp_path: Path) -> AsyncIterator[SqlStore | MemoryStore]:
    async with open_store(request.param, tmp_path) as opened:
        yield opened


async def test_entries_come_back_newest_first_and_whole(store: SqlStore | MemoryStore) -> None:
    trail: AuditStore = store.audit
    written = [entry(T0 + i * US_PER_S) for i in range(3)]
    await trail.record(written)
    found = await trail.find(AuditFilter(), None, 10)
    assert found == list(reversed(written))
    assert found[0].detail == {"method": "POST", "path": "/v1/jobs"}


async def test_pages_by_cursor_without_gaps_or_repeats(store: SqlStore | MemoryStore) -> None:
    # Several entries share an instant: the id breaks the tie, so a page boundary inside
    # them neither repeats nor skips one.
    written = [entry(T0 + (i // 3) * US_PER_S) for i in range(10)]
    await store.audit.record(written)
    seen: list[str] = []
    cursor: AuditCursor | None = None
    while True:
        page = await store.audit.find(AuditFilter(), cursor, 4)
        seen.extend(e.id for e in page)
        if len(page) < 4:
            break
        cursor = AuditCursor.decode(AuditCursor.after(page[-1]).encode())
    assert seen == [e.id for e in sorted(written, key=lambda e: (e.at, e.id), reverse=True)]


async def test_every_filter_narrows(store: SqlStore | MemoryStore) -> None:
    a = entry(T0, app="billing", namespace="billing", prefix="aaaa1111")
    b = entry(T0 + US_PER_S, action="delete_job", outcome="forbidden", app="shop",
              namespace="shop", prefix="bbbb2222")
    c = entry(T0 + 2 * US_PER_S, action="revoke_token", app="system", namespace=None)
    await store.audit.record([a, b, c])

    async def ids(where: AuditFilter) -> list[str]:
        return [e.id for e in await store.audit.find(where, None, 10)]

    assert await ids(AuditFilter(app="shop")) == [b.id]
    assert await ids(AuditFilter(namespace="billing")) == [a.id]
    assert await ids(AuditFilter(action="revoke_token")) == [c.id]
    assert await ids(AuditFilter(outcome="forbidden")) == [b.id]
    assert await ids(AuditFilter(outcome="ok")) == [c.id, a.id]
    assert await ids(AuditFilter(token_prefix="aaaa1111")) == [a.id]
    assert await ids(AuditFilter(since=T0 + US_PER_S)) == [c.id, b.id]
    assert await ids(AuditFilter(until=T0 + US_PER_S)) == [a.id]
    assert await ids(AuditFilter(app="billing", outcome="forbidden")) == []


async def test_purge_takes_old_entries_in_bounded_batches(
    store: SqlStore | MemoryStore,
) -> None:
    await store.audit.record([entry(T0 + i) for i in range(5)] + [entry(T0 + US_PER_S)])
    assert await store.audit.purge(T0 + 100, 3) == 3
    assert await store.audit.purge(T0 + 100, 3) == 2
    assert await store.audit.purge(T0 + 100, 3) == 0
    assert [e.at for e in await store.audit.find(AuditFilter(), None, 10)] == [T0 + US_PER_S]


def make_job(key: str) -> Job:
    spec = JobSpec("ns", key, OneShot(T0), HttpTarget("http://127.0.0.1:9/callback"), None)
    return rules.new_job(new_id(), spec, T0 - US_PER_S)


# -- SQL: the entry rides on the change's transaction -----------------------------------------

SQL = ["sqlite", "postgres"]


def pending(action: str) -> PendingChange:
    return PendingChange(lambda outcome: entry(T0, action=action, outcome=outcome))


@pytest.fixture(params=SQL)
async def sql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with open_store(request.param, tmp_path) as opened:
        assert isinstance(opened, SqlStore)
        yield opened


async def _actions(store: SqlStore) -> list[str]:
    return [e.action for e in await store.audit.find(AuditFilter(), None, 100)]


async def test_a_change_writes_its_entry_once_in_its_own_transaction(sql: SqlStore) -> None:
    change = pending("pause_job")
    token = CURRENT_CHANGE.set(change)
    try:
        with pytest.raises(NotFound):  # refused before writing: no entry, still pending
            await sql.change_job("default", "ghost", lambda job: job)
        assert not change.recorded
        await sql.audit.record([])  # the audit store's own writes never carry the change
        assert await _actions(sql) == []
        await sql.add_jobs([make_job("a")], all_or_nothing=False)  # the change's write
        assert change.recorded                                       # carries it...
        await sql.add_jobs([make_job("b")], all_or_nothing=False)  # ...once
    finally:
        CURRENT_CHANGE.reset(token)
    assert await _actions(sql) == ["pause_job"]


async def test_a_change_that_fails_after_writing_leaves_no_entry(sql: SqlStore) -> None:
    """The group rolls back and the change is replayed alone: it fails again, and neither
    its row nor its entry is there."""
    job = make_job("half")

    async def half_written(conn: AsyncConnection) -> None:
        await conn.execute(insert(jobs).values(**job_values(job)))
        raise RuntimeError("the disk is full")

    change = pending("create_job")
    token = CURRENT_CHANGE.set(change)
    try:
        with pytest.raises(RuntimeError, match="disk is full"):
            await sql._db.write(half_written)
    finally:
        CURRENT_CHANGE.reset(token)
    assert not change.recorded
    assert await sql.get_job_by_id(job.id) is None
    assert await _actions(sql) == []


async def test_a_conflicting_create_is_recorded_as_its_judge_says(sql: SqlStore) -> None:
    change = pending("create_job")
    change.judge = lambda _result: "conflict"
    token = CURRENT_CHANGE.set(change)
    try:
        await sql.add_jobs([], all_or_nothing=True)
    finally:
        CURRENT_CHANGE.reset(token)
    [found] = await sql.audit.find(AuditFilter(), None, 10)
    assert found.outcome == "conflict"



async def test_entries_of_a_group_commit_with_their_changes_and_only_theirs(
    sql: SqlStore,
) -> None:
    """Concurrent changes share write groups and their entries go in at the group's end; one
    change failing after it wrote rolls its group back, and the replay keeps every other
    change with its own entry, and neither the failed change's row nor its entry."""
    bad = make_job("bad")

    async def change(name: str) -> None:
        token = CURRENT_CHANGE.set(pending(f"create_{name}"))
        try:
            if name == "bad":
                async def half_written(conn: AsyncConnection) -> None:
                    await conn.execute(insert(jobs).values(**job_values(bad)))
                    raise RuntimeError("the disk is full")

                with pytest.raises(RuntimeError, match="disk is full"):
                    await sql._db.write(half_written)
            else:
                await sql.add_jobs([make_job(name)], all_or_nothing=False)
        finally:
            CURRENT_CHANGE.reset(token)

    names = [f"j{i}" for i in range(10)]
    await asyncio.gather(*(change(n) for n in [*names[:5], "bad", *names[5:]]))
    assert sorted(await _actions(sql)) == sorted(f"create_{n}" for n in names)
    assert await sql.get_job_by_id(bad.id) is None
    for name in names:
        assert await sql.get_job("ns", name) is not None
