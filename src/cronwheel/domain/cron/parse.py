"""A whole cron expression: which dialect it is, its fields parsed, and the value it becomes.

Clients of the old Quartz service send Quartz expressions (seconds first, optional year, `?`,
`L`, `W`, `#`); everyone else writes the five Unix fields. One engine reads both so that the
two agree on DST and on bounds; docs/cron.md says why no library on PyPI was used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Literal

from cronwheel.domain.cron import iterate
from cronwheel.domain.cron.days import DaySpec
from cronwheel.domain.cron.fields import (
    DOM,
    FIELD,
    HOUR,
    MINUTE,
    MONTH,
    QUARTZ_DOW,
    SECOND,
    UNIX_DOW,
    YEAR,
    day_field,
    simple_field,
)
from cronwheel.domain.errors import InvalidField

CronSyntax = Literal["auto", "quartz", "unix"]
Dialect = Literal["quartz", "unix"]

_MACROS = {
    "@YEARLY": "0 0 1 1 *",
    "@ANNUALLY": "0 0 1 1 *",
    "@MONTHLY": "0 0 1 * *",
    "@WEEKLY": "0 0 * * 0",
    "@DAILY": "0 0 * * *",
    "@MIDNIGHT": "0 0 * * *",
    "@HOURLY": "0 * * * *",
}
_SPACE = re.compile(r"[ \t]+")


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A parsed cron expression, Quartz or Unix, as the sets of values each field allows."""

    text: str
    syntax: Dialect
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    dom: DaySpec
    months: tuple[int, ...]
    dow: DaySpec
    years: tuple[int, ...] | None  # None: any year up to MAX_YEAR

    @classmethod
    def parse(cls, text: str, syntax: CronSyntax = "auto") -> CronExpr:
        """Parse Quartz (6-7 fields) or Unix (5 fields, or a macro); "auto" goes by the count."""
        if not isinstance(text, str):
            raise InvalidField("a cron expression must be a string", FIELD)
        return _parse(text, syntax)

    def next_after(self, instant_us: int, tz: tzinfo) -> int | None:
        """The first occurrence strictly after `instant_us`, in whole seconds, or None."""
        return iterate.next_after(self, instant_us, tz)

    def matches_wall(self, wall: datetime) -> bool:
        """Whether a naive wall-clock time is one the expression names."""
        return self.next_wall(wall.replace(microsecond=0)) == wall

    def next_wall(self, start: datetime) -> datetime | None:
        """The first wall-clock time at or after `start` (naive, whole seconds) that matches."""
        return iterate.next_wall(self, start)


def _dialect(tokens: list[str], syntax: CronSyntax, text: str) -> Dialect:
    count = len(tokens)
    if syntax == "unix" and count != 5:
        raise InvalidField(f"a unix cron expression has 5 fields, got {count}: {text!r}", FIELD)
    if syntax == "quartz" and count not in (6, 7):
        raise InvalidField(
            f"a quartz cron expression has 6 or 7 fields, got {count}: {text!r}", FIELD
        )
    if count == 5:
        return "unix"
    if count in (6, 7):
        return "quartz"
    raise InvalidField(
        f"a cron expression has 5 fields (unix) or 6-7 fields (quartz), got {count}: {text!r}",
        FIELD,
    )


def _check_quartz_days(dom: str, dow: str) -> None:
    """Quartz needs `?` in exactly one day field; it refuses `* * * * * *`."""
    if (dom == "?") == (dow == "?"):
        raise InvalidField(
            f"day-of-month and day-of-week: {dom!r} and {dow!r}: use '?' in exactly one of "
            "day-of-month or day-of-week, e.g. '0 0 12 * * ?' or '0 0 12 ? * MON'",
            FIELD,
        )


def _build(text: str, dialect: Dialect, tokens: list[str]) -> CronExpr:
    """`tokens` are the seven Quartz fields as written; Unix fills in second and year."""
    second, minute, hour, dom, month, dow, year = tokens
    dow_fd = QUARTZ_DOW if dialect == "quartz" else UNIX_DOW
    if dialect == "quartz":
        _check_quartz_days(dom, dow)
    return CronExpr(
        text=text,
        syntax=dialect,
        seconds=simple_field(SECOND, second),
        minutes=simple_field(MINUTE, minute),
        hours=simple_field(HOUR, hour),
        dom=day_field(DOM, dom),
        months=simple_field(MONTH, month),
        dow=day_field(dow_fd, dow),
        years=None if year == "*" else simple_field(YEAR, year),
    )


def _parse_macro(text: str, syntax: CronSyntax) -> CronExpr:
    expansion = _MACROS.get(text.upper())
    if expansion is None:
        known = ", ".join(name.lower() for name in _MACROS)
        raise InvalidField(f"unknown cron macro {text!r}; expected one of: {known}", FIELD)
    if syntax == "quartz":
        raise InvalidField(f"{text!r} is a unix macro; quartz has no macros", FIELD)
    return _build(text, "unix", ["0", *expansion.split(), "*"])


@lru_cache(maxsize=1024)
def _parse(text: str, syntax: CronSyntax) -> CronExpr:
    if syntax not in ("auto", "quartz", "unix"):
        raise InvalidField(f"unknown cron syntax {syntax!r}; expected auto, quartz or unix", FIELD)
    stripped = text.strip(" \t")
    if stripped.startswith("@"):
        return _parse_macro(stripped, syntax)
    tokens = _SPACE.split(stripped) if stripped else []
    dialect = _dialect(tokens, syntax, text)
    if dialect == "unix":
        tokens = ["0", *tokens, "*"]
    elif len(tokens) == 6:
        tokens.append("*")
    return _build(stripped, dialect, tokens)
