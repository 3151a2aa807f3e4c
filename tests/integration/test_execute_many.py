"""Database.execute_many: rows handed to the driver as tuples, on both SQL backends; and a
statement SQLAlchemy would have to convert values for is refused, not sent half-done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from cronwheel.dburl import async_url
from cronwheel.store.connection import Database
from cronwheel.store.tables import attempts, jobs
from tests.stores import database_url

ADD = insert(attempts)
RENAME = (update(attempts).where(attempts.c.run_id == bindparam("b_run"))
          .values(node=bindparam("b_node"), error=None))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with database_url(request.param, tmp_path) as url:
        database = Database(async_url(url))
        await database.start()
        try:
            yield database
        finally:
            await database.close()


def attempt(run_id: str, number: int) -> dict[str, object]:
    return {"run_id": run_id, "number": number, "started_at": 1, "finished_at": 2,
            "outcome": "success", "node": "n1", "status_code": 200, "response": "ok",
            "error": "was"}


async def test_rows_shared_and_fixed_values_all_arrive(db: Database) -> None:
    async def op(conn: AsyncConnection) -> None:
        await db.execute_many(conn, ADD, [attempt("r1", 1), attempt("r2", 1)])
        await db.execute_many(conn, RENAME, [{"b_run": "r1"}], {"b_node": "n2"})

    await db.write(op)
    async with db.read() as conn:
        rows = (await conn.execute(select(attempts.c.run_id, attempts.c.node, attempts.c.error)
                                   .order_by(attempts.c.run_id))).all()
    assert [tuple(r) for r in rows] == [("r1", "n2", None), ("r2", "n1", "was")]


async def test_sqlite_counts_the_rows_written(db: Database) -> None:
    """An INSERT that skips conflicting rows says how many went in (SQLite; PostgreSQL's
    driver does not count an executemany, and says so with None)."""
    skip = db.insert(attempts).on_conflict_do_nothing()

    async def op(conn: AsyncConnection) -> list[int | None]:
        first = await db.execute_many(conn, skip, [attempt("r1", 1), attempt("r2", 1)])
        again = await db.execute_many(conn, skip, [attempt("r1", 1), attempt("r3", 1)])
        return [first, again]

    counts = await db.write(op)
    assert counts == ([2, 1] if db.is_sqlite else [None, None])


async def test_a_statement_needing_python_defaults_is_refused(db: Database) -> None:
    """jobs.priority has a Python-side default: SQLAlchemy would fill it in, the driver not."""
    async def op(conn: AsyncConnection) -> None:
        await db.execute_many(conn, insert(jobs), [{"id": "j1"}])

    with pytest.raises(TypeError, match="not a statement for execute_many"):
        await db.write(op)


async def test_the_writer_replaces_a_connection_that_failed(db: Database) -> None:
    """The writer holds one connection between groups: once it breaks, the next group
    gets a new one instead of failing for good."""
    async def breaks(conn: AsyncConnection) -> None:
        await conn.close()  # as a dropped database connection leaves it
        raise OSError("connection lost")

    async def adds(conn: AsyncConnection) -> None:
        await db.execute_many(conn, ADD, [attempt("r3", 1)])

    with pytest.raises(SQLAlchemyError):
        await db.write(breaks)
    await db.write(adds)
    async with db.read() as conn:
        assert (await conn.execute(select(attempts.c.run_id))).scalars().all() == ["r3"]
