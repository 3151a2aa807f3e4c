"""Connection set-up shared by every SQL module: the engines and their pools, SQLite's pragmas
and one-server file lock, the write queue, and the few places the two dialects differ."""

from __future__ import annotations

import fcntl
import operator
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from sqlalchemy import Insert, Select, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import await_

from cronwheel.contracts import PendingChange, change_to_record
from cronwheel.domain.audit import OK
from cronwheel.domain.time import Micros
from cronwheel.store.batches import chunks
from cronwheel.store.inline_sqlite import inline_connect
from cronwheel.store.rows import audit_values
from cronwheel.store.tables import audit
from cronwheel.store.write_turns import WriteTurns
from cronwheel.store.writer import NOTES, Note, Prelude, WriteOp, WriteQueue, insert_at_commit
from cronwheel.store.writer_thread import ThreadedWriteQueue

T = TypeVar("T")
Q = TypeVar("Q", bound=Select[Any])


def _sqlite_pragmas(engine: AsyncEngine, immediate: bool) -> None:
    # pysqlite's own transaction handling breaks savepoints: take control of BEGIN ourselves.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                       "temp_store=MEMORY", "cache_size=-16000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # One call on aiosqlite's thread: through SQLAlchemy's cursor it was three (cursor,
        # execute, close), each a wake-up of that thread and of the loop, on every transaction.
        try:
            await_(conn.connection.driver_connection.execute_fetchall(begin))
        except sqlite3.Error as exc:  # as SQLAlchemy's own statements would raise it
            raise DBAPIError.instance(begin, None, exc, sqlite3.Error) from exc


class Database:
    """SQLite: one writing connection (group commit through `writes`) and a reading pool.
    PostgreSQL: one pool for both, row locks and SKIP LOCKED, NOTIFY to wake other nodes."""

    def __init__(self, url: str) -> None:
        """`url` names an async driver already (sqlite+aiosqlite, postgresql+asyncpg)."""
        self.is_sqlite = url.startswith("sqlite")
        self._lock_fd: int | None = None  # held open for the node's life: the flock lives on it
        self.lock_file = True  # False in a server's engine process: its API process holds it
        self._relay = False  # SQLite: pass committed wake-ups to the other process
        if self.is_sqlite:
            self.engine = create_async_engine(url, pool_size=1, max_overflow=0)
            self.read_engine = create_async_engine(url, pool_size=4, max_overflow=4)
            _sqlite_pragmas(self.engine, immediate=True)
            _sqlite_pragmas(self.read_engine, immediate=False)
        else:
            self.engine = create_async_engine(url, pool_size=8, max_overflow=8)
            self.read_engine = self.engine
        self.writes: WriteQueue | ThreadedWriteQueue = WriteQueue(self.engine)
        self._many: dict[tuple[int, tuple[str, ...]], _Many] = {}

    async def start(self, migrate: bool = True) -> None:
        if self.is_sqlite and self.lock_file:
            self._lock_sqlite_file()
        if migrate:
            from cronwheel.store.migrate import upgrade

            await upgrade(self.engine)
        self.writes.start()

    async def close(self) -> None:
        await self.writes.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock_sqlite_file(self) -> None:
        """One server per SQLite file: a second would break the one-writer promise."""
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        fd = os.open(f"{os.path.abspath(database)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"another cronwheel server is using {database}; SQLite allows one node "
                "(use PostgreSQL for several)"
            ) from None
        self._lock_fd = fd

    # -- how the modules use it ------------------------------------------------------------

    async def write(self, op: WriteOp[T], urgent: bool = False,
                    prelude: Prelude | None = None) -> T:
        """Run `op` in a write transaction (grouped with others on SQLite). A write made for
        a caller's change (`contracts.PendingChange`) writes its audit entry in the same
        transaction: both commit, or neither. `prelude`: see writer.Prelude."""
        change = change_to_record()
        if change is None:  # the engine's writes (no request in their context): nothing more
            return await self.writes.run(op, urgent=urgent, prelude=prelude)
        result = await self.writes.run(_audited(op, change), urgent=urgent, prelude=prelude)
        change.recorded = True
        return result

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.read_engine.connect()

    async def ping(self) -> None:
        """Raises unless the database answers a query."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def execute_many(
        self, conn: AsyncConnection, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]],
        shared: Mapping[str, Any] | None = None,
    ) -> int | None:
        """`stmt` once per row of values (plus `shared`, the same for all), the rows handed
        to the driver as tuples. SQLAlchemy's own executemany spends ~9 µs of Python per row
        (bench/README.md, session 10): the largest database cost per callback. For long-lived
        statements (compiled once) whose values need no conversion: checked at compile.
        Returns the rows changed, or None where the driver does not count them."""
        if not rows:
            return 0
        many = self._compiled(conn, stmt, (*rows[0], *(shared or {})))
        base = many.fixed if shared is None else {**many.fixed, **shared}
        values = many.values
        tuples = [values({**base, **row}) for row in rows] if base else list(map(values, rows))
        result = await conn.exec_driver_sql(many.sql, tuples)
        count = result.rowcount
        return count if count >= 0 and self.is_sqlite else None

    async def insert_new(self, conn: AsyncConnection, stmt: Insert,
                         rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Insert `rows` (each with a fresh `id`) with `stmt`, an INSERT ... ON CONFLICT DO
        NOTHING built once, and return the ids really inserted: a unique index may drop some.
        SQLite: through `execute_many`, whose count of inserted rows says, as usual, that all
        went in; only when some did not are the inserted ids read back (a fresh id found is
        one inserted here). PostgreSQL's driver does not count an executemany's rows:
        RETURNING says."""
        id_column = stmt.table.c.id
        if not self.is_sqlite:
            inserted: set[str] = set()
            for chunk in chunks(rows):
                result = await conn.execute(stmt.returning(id_column), list(chunk))
                inserted.update(result.scalars())
            return inserted
        ids = [row["id"] for row in rows]
        if await self.execute_many(conn, stmt, rows) == len(ids):
            return set(ids)
        found: set[str] = set()
        for chunk in chunks(ids):
            found.update((await conn.execute(
                select(id_column).where(id_column.in_(chunk)))).scalars())
        return found

    def _compiled(self, conn: AsyncConnection, stmt: UpdateBase, keys: tuple[str, ...]) -> _Many:
        key = (id(stmt), keys)
        many = self._many.get(key)
        if many is None or many.stmt is not stmt:
            many = self._many[key] = _Many.compile(stmt, conn.dialect, keys)
        return many

    def insert(self, table: Any) -> Any:
        """An INSERT that knows ON CONFLICT in this dialect."""
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    def skip_locked(self, query: Q) -> Q:
        """Rows to claim: PostgreSQL skips those another node is claiming; SQLite has one
        writer, so nobody else is."""
        return query if self.is_sqlite else query.with_for_update(skip_locked=True)

    def for_update(self, query: Q) -> Q:
        """Rows to change after reading them: lock them on PostgreSQL."""
        return query if self.is_sqlite else query.with_for_update()

    def relay(self, send: Callable[[list[Note]], None], writer_thread: bool = False) -> None:
        """SQLite, a server split in two processes: `send` gets each commit's wake-ups, as
        PostgreSQL would deliver its NOTIFYs (docs/design.md, "The engine process"). With
        `writer_thread` (the API process) the writes run on a thread of their own, so a loop
        crowded by reads never stretches a transaction that holds the engine's write lock
        (store/writer_thread.py)."""
        self._relay = True
        database = self.engine.url.database
        if not database or database == ":memory:":  # no file, no second process
            self.writes.on_commit = send
            return
        if writer_thread:
            url = self.engine.url

            def writer_engine() -> AsyncEngine:
                engine = create_async_engine(url, async_creator=inline_connect(database),
                                             pool_size=1, max_overflow=0)
                _sqlite_pragmas(engine, immediate=True)
                return engine

            self.writes = ThreadedWriteQueue(writer_engine, turns=WriteTurns(database, False))
        else:
            self.writes = WriteQueue(self.engine, turns=WriteTurns(database, first=True))
        self.writes.on_commit = send

    @property
    def writer_thread(self) -> int | None:
        """The OS id of the thread the writes run on, if they have one of their own."""
        return self.writes.native_id if isinstance(self.writes, ThreadedWriteQueue) else None

    async def notify(
        self, conn: AsyncConnection, channel: str, about: Micros | str | None
    ) -> None:
        """Tell every node (at commit) that work became due, or for whom: they wake if it
        concerns them. SQLite has one node, woken in process, or a server's two processes,
        linked by a socket."""
        if about is None:
            return
        if not self.is_sqlite:
            await conn.execute(text("SELECT pg_notify(:c, :v)"),
                               {"c": channel, "v": str(about)})
        elif self._relay:
            conn.info.setdefault(NOTES, []).append((channel, str(about)))


def _audited(op: WriteOp[T], change: PendingChange) -> WriteOp[T]:
    """`op`, then the change's audit entry, in the transaction `op` runs in (again on a
    replay: a rolled-back group took the first entry with it). The entries of a group are
    inserted together at its end, before its commit."""

    async def with_entry(conn: AsyncConnection) -> T:
        result = await op(conn)
        outcome = change.judge(result) if change.judge is not None else OK
        insert_at_commit(conn, audit, audit_values(change.describe(outcome)))
        return result

    return with_entry


class _Many:
    """A statement compiled once for `Database.execute_many`: its SQL, the order of its
    parameters, and the values bound in the statement itself."""

    def __init__(self, stmt: UpdateBase, sql: str, names: tuple[str, ...],
                 fixed: dict[str, Any]) -> None:
        self.stmt = stmt  # held, so its id() is not reused while cached
        self.sql = sql
        self.fixed = fixed
        pick = operator.itemgetter(*names)  # one name: a value, not a tuple
        self.values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            pick if len(names) > 1 else lambda row: (pick(row),))

    @classmethod
    def compile(cls, stmt: UpdateBase, dialect: Any, keys: tuple[str, ...]) -> _Many:
        compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or ())
        if not names or compiled.insert_prefetch or compiled.update_prefetch or any(
            compiled.binds[n].type.bind_processor(dialect) is not None
            or compiled.binds[n].expanding for n in names
        ):
            raise TypeError(f"not a statement for execute_many: {compiled.string}")
        fixed = {n: compiled.binds[n].effective_value for n in names
                 if n not in keys and not compiled.binds[n].required}
        return cls(stmt, compiled.string, names, fixed)
