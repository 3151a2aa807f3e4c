"""Settings for `serve` and `migrate`, or one line saying which is wrong and why (exit 2):
a mistyped environment variable must not read as a crash."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:  # imported where used: the client commands start faster without pydantic
    from pydantic import ValidationError

    from cronwheel.settings import Settings

_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_FLAGS = {"host": "--host", "port": "--port", "database_url": "--database-url",
          "tls_cert": "--tls-cert", "tls_key": "--tls-key"}


def load_settings(**given: Any) -> Settings:
    """The settings from the environment, with the options given on the command line."""
    from pydantic import ValidationError

    from cronwheel.settings import Settings

    chosen = {name: value for name, value in given.items() if value is not None}
    try:
        settings = Settings(**chosen)
    except ValidationError as exc:
        _stop(_problem(exc, chosen))
    _check_database(settings.database_url, "database_url" in chosen)
    return settings


def log_options() -> tuple[str, str]:
    """CRONWHEEL_LOG_LEVEL and CRONWHEEL_LOG_FORMAT for `worker`, which reads none of the
    server's other settings (a worker host need not have them)."""
    from cronwheel.logs import FORMATS, LEVELS

    chosen = []
    for name, allowed, default in (("LOG_LEVEL", LEVELS, "info"),
                                   ("LOG_FORMAT", FORMATS, "text")):
        given = os.environ.get(f"CRONWHEEL_{name}", default)
        value = given.strip().lower()
        if value not in allowed:
            _stop(f"CRONWHEEL_{name}: must be one of {', '.join(allowed)} (got {given!r})")
        chosen.append(value)
    return chosen[0], chosen[1]


def _problem(exc: ValidationError, chosen: dict[str, Any]) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error.get("loc", ())]
    name = loc[0] if loc else "settings"
    where = _FLAGS[name] if name in chosen and name in _FLAGS else f"CRONWHEEL_{name.upper()}"
    inner = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{where}{inner}: {error.get('msg', 'invalid value')}{shown}"


def _check_database(url: str, from_flag: bool) -> None:
    """Refuse a URL no store can open before anything starts."""
    from sqlalchemy.exc import ArgumentError

    from cronwheel.dburl import async_url

    where = "--database-url" if from_flag else "CRONWHEEL_DATABASE_URL"
    try:
        driver = async_url(url).split(":", 1)[0]
    except (ArgumentError, ValueError):
        _stop(f"{where}: {url!r} is not a database URL; use sqlite:///path or "
              "postgresql://user@host/db")
    if driver not in _DRIVERS:
        _stop(f"{where}: {driver.split('+')[0]!r} databases are not supported; use "
              "sqlite:///path or postgresql://user@host/db")


def _stop(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
