"""Which nodes are alive, as PostgreSQL sees it: each engine node holds a session advisory lock
keyed by its owner id, on a connection of its own, for its whole life.

The server drops a session lock the moment the session ends: the process was killed, its
machine went away, or its connection was cut (pg_terminate_backend, a server restart). So a free
lock means the node can no longer act on the database, and its claims can go to others at once
instead of after their lease. A node that is alive but unreachable keeps its session (and its
lock) until the server notices, and its leases remain the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.dburl import asyncpg_dsn
from cronwheel.domain.time import Micros
from cronwheel.store.connection import Database
from cronwheel.store.nodes import release_leases
from cronwheel.store.pg import DUE_CHANNEL, RUN_CHANNEL

log = logging.getLogger("cronwheel.liveness")

NODE_LOCK_CLASS = 0x6E6F6465  # "node": first key of every node lock; the second is hashtext(owner)
APPLICATION_NAME = "cronwheel-liveness"  # how the lock sessions show in pg_stat_activity
CONNECT_TIMEOUT_S = 10.0  # a loaded machine can take seconds to open a connection
QUERY_TIMEOUT_S = 5.0  # a slow survey is given up (the lock stays with its session)

_SURVEY = """
SELECT n.owner, EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = $1 AND l.objid = hashtext(n.owner)::oid
) AS alive
FROM nodes n
WHERE n.stopped_at IS NULL AND (n.heartbeat_at >= $2 OR n.owner = $3)
"""


class PgLiveness:
    def __init__(self, url: str, db: Database, owner: str,
                 on_lost: Callable[[], None] | None = None) -> None:
        self._dsn = asyncpg_dsn(url)
        self._db = db
        self._owner = owner
        self.on_lost = on_lost  # told at once when the lock's connection ends
        self._conn: asyncpg.Connection | None = None
        self._busy = asyncio.Lock()  # one query at a time on the lock connection

    async def survey(self, since: Micros) -> list[tuple[str, bool]] | None:
        """Take (or confirm) this node's lock, then list the nodes not stopped that heartbeat
        at or after `since`, each with whether its lock is held. None while ours is not.

        A slow answer raises TimeoutError but keeps the session, and so the lock: only a
        session that ended (or could not be opened) means the lock is gone."""
        async with self._busy:
            if (self._conn is None or self._conn.is_closed()) and not await self._take():
                return None
            conn = self._conn
            assert conn is not None
            try:
                rows = await conn.fetch(_SURVEY, NODE_LOCK_CLASS, since, self._owner,
                                        timeout=QUERY_TIMEOUT_S)
            except Exception:
                if not conn.is_closed():
                    raise
                await self._drop()
                return None
        return [(str(r["owner"]), bool(r["alive"])) for r in rows]

    async def _take(self) -> bool:
        await self._drop()
        try:
            conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S,
                                         server_settings={"application_name": APPLICATION_NAME})
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("liveness.connect_failed", exc_info=True)
            return False
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))",
                                      NODE_LOCK_CLASS, self._owner, timeout=QUERY_TIMEOUT_S)
        except BaseException:
            await conn.close(timeout=CONNECT_TIMEOUT_S)
            raise
        if not got:  # a peer is releasing us this instant, or (1 in 2^32) a hash twin
            log.warning("liveness.lock_busy", extra={"owner": self._owner})
            await conn.close(timeout=CONNECT_TIMEOUT_S)
            return False
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        return True

    def _terminated(self, _conn: object) -> None:
        log.warning("liveness.lock_lost", extra={"owner": self._owner})
        if self.on_lost is not None:
            self.on_lost()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._terminated)
            with contextlib.suppress(Exception):
                await conn.close(timeout=CONNECT_TIMEOUT_S)

    async def release_dead(self, owner: str) -> bool:
        """Hand back a dead node's claims and make its runs due now, while holding its lock in
        this transaction: if it is free, the node cannot be holding it, and cannot retake it
        before the commit. False if it was held (alive again, or another node is at it)."""

        async def op(conn: AsyncConnection) -> bool:
            got = await conn.execute(text("SELECT pg_try_advisory_xact_lock(:c, hashtext(:o))"),
                                     {"c": NODE_LOCK_CLASS, "o": owner})
            if not got.scalar_one():
                return False
            await release_leases(conn, owner)
            await self._db.notify(conn, DUE_CHANNEL, 0)  # every node claims again at once
            await self._db.notify(conn, RUN_CHANNEL, 0)
            return True

        return await self._db.write(op, urgent=True)

    async def close(self) -> None:
        """Let go of the lock (a clean stop: the node has handed its work back)."""
        async with self._busy:
            await self._drop()
