"""`sql`: one statement against a database configured on the worker.

Spec: `{"database": NAME, "statement": str, "params"?: {}}`. NAME is one of the worker's
`--database NAME=URL`: credentials stay on the worker and reach the child through its
environment, never through the server. Rows are the result, one JSON object per line, fetched
in batches; the row count goes to the log. The statement runs in a transaction committed on
success.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from cronwheel.domain.errors import InvalidField
from cronwheel.jobtypes import Launch, LaunchContext, TaskFailed, check_keys, in_child, text

if TYPE_CHECKING:
    from sqlalchemy import Connection

name = "sql"
BATCH = 1_000
URL_ENV = "CRONWHEEL_SQL_URL"
NAMES_ENV = "CRONWHEEL_SQL_DATABASES"
DATABASE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KEYS = {"database", "statement", "params"}
# Statements that read: fetched through a server-side cursor, so a large answer streams. Others
# run plainly, which keeps the affected-row count (drivers lose it on a server-side cursor).
_READS = ("select", "with", "values", "table", "show", "explain")
_LEADING_COMMENTS = re.compile(r"^(\s|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


def parse(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    check_keys(spec, _KEYS, prefix)
    database = spec.get("database")
    if not isinstance(database, str) or not DATABASE_NAME.match(database):
        raise InvalidField("database must be the name of a database configured on the worker "
                           "(1-64 letters, digits, '.', '_' or '-')", f"{prefix}.database")
    statement = text(spec, "statement", prefix)
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise InvalidField("params must be an object of named parameters", f"{prefix}.params")
    return {"database": database, "statement": statement, "params": params}


def launch(spec: dict[str, Any], ctx: LaunchContext) -> Launch:
    env = {NAMES_ENV: ",".join(sorted(ctx.databases))}
    url = ctx.databases.get(spec["database"])
    if url is not None:
        env[URL_ENV] = url
    return in_child(name, spec, ctx, env)


def reads(statement: str) -> bool:
    body = _LEADING_COMMENTS.sub("", statement, count=1)
    word = re.match(r"[A-Za-z]+", body)
    return word is not None and word.group(0).lower() in _READS


def run(spec: dict[str, Any], result: BinaryIO) -> object:
    """In the child: check the database is configured, then run the statement."""
    url = os.environ.get(URL_ENV)
    if not url:
        known = os.environ.get(NAMES_ENV) or "none"
        raise TaskFailed(f"database {spec['database']!r} is not configured on this worker "
                         f"(configured: {known}); start it with --database NAME=URL")
    return _run(url, spec, result)


async def _run(url: str, spec: dict[str, Any], result: BinaryIO) -> None:
    # Here, not at the top: the server and the worker import this module, not SQLAlchemy.
    from sqlalchemy.ext.asyncio import create_async_engine

    from cronwheel.dburl import async_url

    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            message = await conn.run_sync(_execute, spec, result)
    finally:
        await engine.dispose()
    print(message)


def _execute(conn: Connection, spec: dict[str, Any], out: BinaryIO) -> str:
    from sqlalchemy import text as sql_text

    streamed = conn.execution_options(yield_per=BATCH) if reads(spec["statement"]) else conn
    answer = streamed.execute(sql_text(spec["statement"]), spec.get("params") or {})
    try:
        if not answer.returns_rows:
            count = answer.rowcount
            return f"{count} rows affected" if count >= 0 else "statement done"
        rows = 0
        for batch in answer.partitions(BATCH):
            out.write(b"".join(orjson.dumps(r._asdict(), default=str) + b"\n" for r in batch))
            rows += len(batch)
        return f"{rows} rows"
    finally:
        answer.close()
