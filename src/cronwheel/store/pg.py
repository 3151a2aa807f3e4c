"""PostgreSQL's side channel: LISTEN/NOTIFY wake-ups and the advisory lock for singleton duties.

Both live on one dedicated asyncpg connection, outside the pool: a session advisory lock is
held exactly as long as that connection, so a node that dies or loses the database drops
leadership by itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import asyncpg

from cronwheel.dburl import asyncpg_dsn

log = logging.getLogger("cronwheel.pg")

DUE_CHANNEL = "cronwheel_due"  # payload: the instant a job became due at (us)
RUN_CHANNEL = "cronwheel_run"  # payload: the instant a run became due at (us)
WORKER_CHANNEL = "cronwheel_worker"  # payload: the id of a worker handed a task
SINGLETON_LOCK = 0x63726F6E  # "cron": the key of the singleton duties' advisory lock


class PgChannel:
    def __init__(self, url: str, on_due: Callable[[int], None], on_run: Callable[[int], None],
                 on_worker: Callable[[str], None] | None = None):
        self._dsn = asyncpg_dsn(url)
        self._on_due = on_due
        self._on_run = on_run
        self._on_worker = on_worker
        self._conn: asyncpg.Connection | None = None
        self._leader = False

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """(Re)connect and listen; leadership is lost with the old connection."""
        await self.close()
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(DUE_CHANNEL, self._due)
        await conn.add_listener(RUN_CHANNEL, self._run)
        if self._on_worker is not None:
            await conn.add_listener(WORKER_CHANNEL, self._worker)
        self._conn = conn

    def _due(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._on_due(int(payload))

    def _run(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._on_run(int(payload))

    def _worker(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if self._on_worker is not None:
            self._on_worker(payload)

    async def lead(self) -> bool:
        """True while this node holds the singleton lock (taken if free)."""
        if not self.connected:
            await self.connect()
        assert self._conn is not None
        if not self._leader:
            self._leader = bool(await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", SINGLETON_LOCK))
        return self._leader

    async def close(self) -> None:
        self._leader = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
