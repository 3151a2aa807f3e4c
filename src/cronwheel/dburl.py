"""Database URLs as users write them, mapped to the drivers cronwheel uses.

Neutral ground: the server's store and the worker's `sql` job type both connect to databases
from user-written URLs, and neither may import the other.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
                  "postgres": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """Map the URLs users write (sqlite:///x.db, postgresql://...) to the async drivers."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The plain `postgresql://` form asyncpg's own connect takes (no SQLAlchemy driver)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
