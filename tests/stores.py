"""Store backends for the one contract suite: in memory, a SQLite file, and a fresh PostgreSQL
database."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from cronwheel.store.memory import MemoryStore
from cronwheel.store.sql import SqlStore
from tests.support import port_open, service_missing

PG_HOST = os.environ.get("CRONWHEEL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CRONWHEEL_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CRONWHEEL_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("CRONWHEEL_TEST_PG_DB", "test")


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own for one test, dropped afterwards."""
    if not port_open(PG_HOST, PG_PORT):
        service_missing("PostgreSQL", f"nothing listens on {PG_HOST}:{PG_PORT}")
    import asyncpg

    name = f"cw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(user=PG_USER, host=PG_HOST, port=PG_PORT, database=PG_ADMIN_DB)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    async with postgres_database() as url:
        yield url


STORES = ["memory", "sqlite", "postgres"]
"""Every Store the contract suite runs against. SQL-only behaviour (the SQLite file lock,
migrations) has its own tests outside the suite: the memory store has no file or schema."""


@contextlib.asynccontextmanager
async def open_store(
    backend: str, tmp_path: Path, node: str = "test-node"
) -> AsyncIterator[SqlStore | MemoryStore]:
    """A started store of the named kind, empty, closed (and its database dropped) afterwards."""
    if backend == "memory":
        memory = MemoryStore(node=node)
        await memory.start()
        yield memory
        await memory.close()
        return
    async with database_url(backend, tmp_path) as url:
        sql = SqlStore(url, node=node)
        await sql.start()
        try:
            yield sql
        finally:
            await sql.close()
