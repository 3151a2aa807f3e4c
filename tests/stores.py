"""Store backends for the one contract suite: in memory, a SQLite file, and a fresh PostgreSQL
database."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cronwheel.store.memory import MemoryStore
from cronwheel.store.migrate import MIGRATIONS
from cronwheel.store.sql import SqlStore, migrate_schema
from tests.support import port_open, service_missing

PG_HOST = os.environ.get("CRONWHEEL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CRONWHEEL_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CRONWHEEL_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("CRONWHEEL_TEST_PG_DB", "test")


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _schema_digest() -> str:
    """Names the schema the migrations build: a template made from other migrations is never
    used (a test run on a branch with a new migration makes its own)."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_pg_template: str | None = None
_TEMPLATE_LOCK = 0x63777470  # "cwtp": pytest-xdist workers build the template once between them


async def _postgres_template(admin: object) -> str:
    """A database migrated to the head once, cloned by every test (`CREATE DATABASE ...
    TEMPLATE` copies files: about 40 ms, where migrating through every revision takes 200-300)."""
    global _pg_template
    if _pg_template is not None:
        return _pg_template
    import asyncpg

    assert isinstance(admin, asyncpg.Connection)
    name = f"cw_tpl_{_schema_digest()}"
    await admin.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            building = f"{name}_building"
            await admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{building}"')
            await migrate_schema(pg_url(building))
            await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS 'made {time.time():.0f}'")
        # Other schemas' templates belong to other checkouts, maybe testing at this moment
        # (a branch with a new migration): only those made over a day ago are dropped.
        for old, note in await admin.fetch(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
                " WHERE datname LIKE 'cw\\_tpl\\_%' AND datname <> $1", name):
            if note and note.startswith("made ") and float(note[5:]) < time.time() - 86_400:
                await admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK)
    _pg_template = name
    return name


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own for one test, already migrated to the head, dropped afterwards."""
    if not port_open(PG_HOST, PG_PORT):
        service_missing("PostgreSQL", f"nothing listens on {PG_HOST}:{PG_PORT}")
    import asyncpg

    name = f"cw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(user=PG_USER, host=PG_HOST, port=PG_PORT, database=PG_ADMIN_DB)
    try:
        template = await _postgres_template(admin)
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        yield pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


_sqlite_template: Path | None = None


def sqlite_file(directory: Path, name: str = "store.db", keep: bool = False) -> Path:
    """A SQLite file migrated to the head, copied from one migrated per test process (`keep`:
    a file already there is left as it is)."""
    target = directory / name
    if keep and target.exists():
        return target
    global _sqlite_template
    if _sqlite_template is None:
        made = Path(tempfile.mkdtemp(prefix="cw_sqlite_tpl_")) / "template.db"
        # Its own thread and loop: callers may be sync or inside the test's running loop.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, migrate_schema(f"sqlite:///{made}")).result()
        _sqlite_template = made
    shutil.copyfile(_sqlite_template, target)
    return target


@contextlib.asynccontextmanager
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{sqlite_file(tmp_path)}"
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
