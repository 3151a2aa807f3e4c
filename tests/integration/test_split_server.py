"""A server in two processes on one SQLite file (`serve --engine-process`): the API process
holds the one-server lock, the engine opens the file under it, and each commit's wake-ups
are passed on after the commit, the way PostgreSQL's NOTIFY would deliver them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.dburl import async_url
from cronwheel.store.connection import Database
from cronwheel.store.pg import DUE_CHANNEL, RUN_CHANNEL
from cronwheel.store.sql import SqlStore
from tests.integration.test_store import LEASE, T0, make_job


async def test_commits_pass_their_wake_ups_on_and_the_lock_still_refuses_a_server(
    tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'cw.db'}"
    api, engine, second = SqlStore(url), SqlStore(url), SqlStore(url)
    to_engine: list[tuple[str, str]] = []
    to_api: list[tuple[str, str]] = []
    api.split_server(to_engine.extend, holds_lock=True)
    engine.split_server(to_api.extend, holds_lock=False)
    await api.start()
    await engine.start()  # under the API process's lock
    try:
        with pytest.raises(RuntimeError, match="another cronwheel server"):
            await second.start()
        await api.add_jobs([make_job("a", at=T0 + 5)], True)
        assert to_engine == [(DUE_CHANNEL, str(T0 + 5))]
        assert to_api == []

        claimed = await engine.acquire_due_jobs("engine", T0 + 5, T0 + 5, 10, T0 + LEASE)
        assert [j.spec.key for j in claimed] == ["a"]
        await engine.release("engine")
        assert to_api == [(DUE_CHANNEL, "0"), (RUN_CHANNEL, "0")]
    finally:
        await engine.close()
        await api.close()
        await second.close()


async def test_a_single_process_server_passes_nothing(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'cw.db'}")
    await store.start()
    try:
        await store.add_jobs([make_job("a")], True)  # no relay: nothing to call, no error
        assert store.single_node
    finally:
        await store.close()


async def test_a_rolled_back_write_passes_nothing_on(tmp_path: Path) -> None:
    db = Database(async_url(f"sqlite:///{tmp_path / 'cw.db'}"))
    sent: list[tuple[str, str]] = []
    db.relay(sent.extend)
    await db.start()

    async def noted_then_failed(conn: AsyncConnection) -> None:
        await db.notify(conn, RUN_CHANNEL, 7)
        raise RuntimeError("the write failed after noting")

    async def noted(conn: AsyncConnection) -> None:
        await db.notify(conn, DUE_CHANNEL, 8)

    try:
        with pytest.raises(RuntimeError):
            await db.write(noted_then_failed)
        await db.write(noted)
        assert sent == [(DUE_CHANNEL, "8")]
    finally:
        await db.close()
