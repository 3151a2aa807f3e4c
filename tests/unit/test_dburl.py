"""Database URLs as users write them, mapped to cronwheel's drivers (cronwheel.dburl)."""

from __future__ import annotations

import pytest

from cronwheel.dburl import async_url, asyncpg_dsn


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("sqlite:///cronwheel.db", "sqlite+aiosqlite:///cronwheel.db"),
        ("sqlite:////var/lib/cw.db", "sqlite+aiosqlite:////var/lib/cw.db"),
        ("postgresql://etl@db/warehouse", "postgresql+asyncpg://etl@db/warehouse"),
        ("postgres://etl@db:5433/warehouse", "postgresql+asyncpg://etl@db:5433/warehouse"),
        # a driver the user chose is kept
        ("postgresql+psycopg://etl@db/w", "postgresql+psycopg://etl@db/w"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_async_url_picks_the_async_driver(written: str, used: str) -> None:
    assert async_url(written) == used


def test_the_password_survives_escaped() -> None:
    # the URL is used to connect, so the password must not be masked as in log output
    assert async_url("postgresql://etl:p%40ss@db/w") == "postgresql+asyncpg://etl:p%40ss@db/w"


def test_asyncpg_dsn_drops_the_sqlalchemy_driver() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://etl:s3@db/w") == "postgresql://etl:s3@db/w"
