"""Cron expressions, Quartz and Unix, evaluated on the wall clock of an IANA time zone.

Clients of the old Quartz service send Quartz expressions (seconds first, optional year, `?`,
`L`, `W`, `#`); everyone else writes the five Unix fields. One engine reads both so that the
two agree on DST and on bounds; docs/cron.md says why no library on PyPI was used.

Search skips field by field (year, month, day, hour, minute, second) on the naive wall clock,
then maps the wall time to an instant with the DST rules of docs/cron.md.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.schedules import register
from cronwheel.domain.time import MAX_INSTANT, US_PER_S, Micros, parse_instant, to_iso

CronSyntax = Literal["auto", "quartz", "unix"]
Dialect = Literal["quartz", "unix"]
# A calendar-relative day rule: ("L", offset, 0) is L-offset, ("W", day, 0) is dayW,
# ("LW", 0, 0), ("last", weekday, 0) is weekdayL, ("#", weekday, k) is weekday#k.
Rule = tuple[str, int, int]

MIN_YEAR = 1970
MAX_YEAR = 2199
FIELD = "cron"

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
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
_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = timedelta(seconds=1)
_DAY_S = 86_400
# The first second of 2200-01-02 UTC: no wall time up to 2199-12-31 lies beyond it.
_SEARCH_END_S = (datetime(MAX_YEAR + 1, 1, 2) - _EPOCH) // _ONE_SECOND


@dataclass(frozen=True, slots=True)
class _FieldDef:
    """One field's name (for messages), range and symbolic names."""

    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # the value of names[0]
    wrap_hi: int | None = None  # the top of the cycle a reversed range wraps over, if not hi

    @property
    def top(self) -> int:
        return self.hi if self.wrap_hi is None else self.wrap_hi


_SECOND = _FieldDef("second", 0, 59)
_MINUTE = _FieldDef("minute", 0, 59)
_HOUR = _FieldDef("hour", 0, 23)
_DOM = _FieldDef("day-of-month", 1, 31)
_MONTH = _FieldDef("month", 1, 12, _MONTH_NAMES, 1)
_UNIX_DOW = _FieldDef("day-of-week", 0, 7, _DAY_NAMES, 0, wrap_hi=6)
_QUARTZ_DOW = _FieldDef("day-of-week", 1, 7, _DAY_NAMES, 1)
_YEAR = _FieldDef("year", MIN_YEAR, MAX_YEAR)


def _bad(fd: _FieldDef, token: str, problem: str) -> InvalidField:
    return InvalidField(f"{fd.name}: {token!r} {problem}", FIELD)


# ---------------------------------------------------------------------------------------------
# Parsing one field


def _number(text: str) -> int | None:
    """ASCII digits only (str.isdigit also takes '²'); four digits cover every field."""
    if text.isascii() and text.isdigit() and len(text) <= 4:
        return int(text)
    return None


def _value(fd: _FieldDef, text: str, token: str) -> int:
    number = _number(text)
    if number is None and text in fd.names:
        number = fd.names.index(text) + fd.name_base
    if number is None:
        hint = f" or a name {fd.names[0]}-{fd.names[-1]}" if fd.names else ""
        shown = repr(text) if text else "an empty value"
        raise _bad(fd, token, f"has {shown} where a number {fd.lo}..{fd.hi}{hint} belongs")
    if not fd.lo <= number <= fd.hi:
        raise _bad(fd, token, f"value {number} is out of range {fd.lo}..{fd.hi}")
    return number


def _step(fd: _FieldDef, text: str, token: str) -> int:
    span = fd.hi - fd.lo + 1
    step = _number(text)
    if step is None or not 1 <= step <= span:
        raise _bad(fd, token, f"step must be 1..{span}")
    return step


def _cycle(fd: _FieldDef, start: int, end: int) -> list[int]:
    """A range; a reversed one wraps around (Quartz: FRI-MON, 22-2)."""
    if start <= end:
        return list(range(start, end + 1))
    return list(range(start, fd.top + 1)) + list(range(fd.lo, end + 1))


def _plain(fd: _FieldDef, item: str, token: str) -> set[int]:
    """`*`, `v`, `a-b`, each optionally `/step`."""
    base, slash, step_text = item.partition("/")
    step = _step(fd, step_text, token) if slash else 1
    if base == "*":
        start, end = fd.lo, fd.hi
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _value(fd, first, token), _value(fd, last, token)
    else:
        start = _value(fd, base, token)
        end = fd.top if slash else start
        if slash and start > end:  # `7/2` in Unix day-of-week: Sunday only
            end = start
    return set(_cycle(fd, start, end)[::step])


def _items(fd: _FieldDef, token: str) -> list[str]:
    """The list items, upper-cased (names, L and W take any case); messages show `token`."""
    items = token.upper().split(",")
    if "" in items:
        raise _bad(fd, token, "has an empty list item")
    if "?" in token:
        raise _bad(fd, token, "may use '?' only on its own")
    return items


def _special_marks(fd: _FieldDef, item: str) -> bool:
    """L, W or # outside a name (JUL and WED hold letters, not marks)."""
    return any(mark in item for mark in "LW#") and not any(name in item for name in fd.names)


def _simple_field(fd: _FieldDef, token: str) -> tuple[int, ...]:
    """Seconds, minutes, hours, months and years take no letters but names."""
    if token == "?":
        raise _bad(fd, token, "is only allowed in day-of-month or day-of-week")
    values: set[int] = set()
    for item in _items(fd, token):
        if _special_marks(fd, item):
            raise _bad(fd, token, "L, W and # are only allowed in the day fields")
        values |= _plain(fd, item, token)
    return tuple(sorted(values))


@dataclass(frozen=True, slots=True)
class DaySpec:
    """One of the two day fields: plain values plus calendar-relative rules.

    `star` records that the field was written starting with `*` or `?`: Vixie cron then ANDs
    the two day fields instead of ORing them, and Quartz ignores the `?` field.
    """

    star: bool
    values: frozenset[int]  # days of the month 1..31, or weekdays 0..6 with 0 = Sunday
    rules: frozenset[Rule] = frozenset()


def _dom_item(item: str, token: str) -> tuple[set[int], Rule | None]:
    if item == "L":
        return set(), ("L", 0, 0)
    if item == "LW":
        return set(), ("LW", 0, 0)
    if item.startswith("L-"):
        offset = _number(item[2:])
        if offset is None or offset > 30:
            raise _bad(_DOM, token, "offset must be 0..30")
        return set(), ("L", offset, 0)
    if item.endswith("W"):
        if _number(item[:-1]) is None:
            raise _bad(_DOM, token, "W needs a single day before it, e.g. 15W")
        return set(), ("W", _value(_DOM, item[:-1], token), 0)
    if "L" in item or "W" in item or "#" in item:
        raise _bad(_DOM, token, "is not a day: expected L, L-n, nW, LW or days such as 1-15/2")
    return _plain(_DOM, item, token), None


def _weekday(fd: _FieldDef, text: str, token: str) -> int:
    """A single weekday, as 0..6 with 0 = Sunday whatever the syntax numbers it."""
    if not text or any(mark in text for mark in "-/*"):
        raise _bad(fd, token, "needs a single weekday before L or #, e.g. 6L, FRIL or 6#3")
    return (_value(fd, text, token) - fd.name_base) % 7


def _dow_item(fd: _FieldDef, item: str, token: str) -> tuple[set[int], Rule | None]:
    if item == "L":  # last day of the week: Saturday
        return {6}, None
    if "#" in item:
        day, _, nth = item.partition("#")
        weekday = _weekday(fd, day, token)
        k = _number(nth)
        if k is None or not 1 <= k <= 5:
            raise _bad(fd, token, "occurrence after # must be 1..5")
        return set(), ("#", weekday, k)
    if item.endswith("L"):
        return set(), ("last", _weekday(fd, item[:-1], token), 0)
    if "W" in item and not any(name in item for name in fd.names):  # WED is a name
        raise _bad(fd, token, "W is only allowed in day-of-month")
    return {(v - fd.name_base) % 7 for v in _plain(fd, item, token)}, None


def _day_field(fd: _FieldDef, token: str) -> DaySpec:
    if token in ("*", "?"):
        everything = range(1, 32) if fd is _DOM else range(7)
        return DaySpec(star=True, values=frozenset(everything))
    values: set[int] = set()
    rules: set[Rule] = set()
    for item in _items(fd, token):
        found, rule = _dom_item(item, token) if fd is _DOM else _dow_item(fd, item, token)
        values |= found
        if rule is not None:
            rules.add(rule)
    return DaySpec(star=token.startswith("*"), values=frozenset(values), rules=frozenset(rules))


# ---------------------------------------------------------------------------------------------
# Parsing an expression


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
    dow_fd = _QUARTZ_DOW if dialect == "quartz" else _UNIX_DOW
    if dialect == "quartz":
        _check_quartz_days(dom, dow)
    return CronExpr(
        text=text,
        syntax=dialect,
        seconds=_simple_field(_SECOND, second),
        minutes=_simple_field(_MINUTE, minute),
        hours=_simple_field(_HOUR, hour),
        dom=_day_field(_DOM, dom),
        months=_simple_field(_MONTH, month),
        dow=_day_field(dow_fd, dow),
        years=None if year == "*" else _simple_field(_YEAR, year),
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


# ---------------------------------------------------------------------------------------------
# Days of one month


def _nearest_weekday(day: int, length: int, first: int) -> int | None:
    """Quartz `dayW`: the weekday nearest `day`, never leaving the month."""
    if day > length:
        return None
    weekday = (first + day - 1) % 7
    if weekday == 6:  # Saturday: Friday before, or Monday the 3rd when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 0:  # Sunday: Monday after, or Friday before when it is the last day
        return day + 1 if day < length else day - 2
    return day


def _last_weekday(length: int, first: int) -> int:
    weekday = (first + length - 1) % 7
    return length - {6: 1, 0: 2}.get(weekday, 0)


def _rule_day(rule: Rule, length: int, first: int) -> int | None:
    """The day of a month (`length` days, day 1 on weekday `first`) a rule picks, if any."""
    kind, a, b = rule
    if kind == "L":
        return length - a if length - a >= 1 else None
    if kind == "W":
        return _nearest_weekday(a, length, first)
    if kind == "LW":
        return _last_weekday(length, first)
    if kind == "last":
        return length - (first + length - 1 - a) % 7
    day = 1 + (a - first) % 7 + 7 * (b - 1)  # "#": the b-th weekday a
    return day if day <= length else None


def _rule_days(spec: DaySpec, length: int, first: int) -> set[int]:
    days = (_rule_day(rule, length, first) for rule in spec.rules)
    return {day for day in days if day is not None}


def _month_days(dom: DaySpec, dow: DaySpec, year: int, month: int) -> tuple[int, ...]:
    """The days of a month both day fields allow, in order."""
    monday_first, length = calendar.monthrange(year, month)
    first = (monday_first + 1) % 7  # weekday of the 1st, 0 = Sunday
    by_date = {day for day in dom.values if day <= length} | _rule_days(dom, length, first)
    by_weekday = {d for d in range(1, length + 1) if (first + d - 1) % 7 in dow.values}
    by_weekday |= _rule_days(dow, length, first)
    days = by_date & by_weekday if dom.star or dow.star else by_date | by_weekday
    return tuple(sorted(days))


# ---------------------------------------------------------------------------------------------
# Wall clock and instants


def _first_at_least(values: Sequence[int], value: int) -> int | None:
    index = bisect_left(values, value)
    return values[index] if index < len(values) else None


def _offset_at(tz: tzinfo, seconds: int) -> int:
    offset = datetime.fromtimestamp(seconds, tz).utcoffset()
    return 0 if offset is None else offset // _ONE_SECOND


def _wall_offsets(wall: datetime, tz: tzinfo) -> tuple[int, int]:
    """The offsets of both folds: equal normally, fold 0 smaller in a gap, larger when repeated."""
    offsets = (wall.replace(tzinfo=tz, fold=fold).utcoffset() for fold in (0, 1))
    first, second = (0 if o is None else o // _ONE_SECOND for o in offsets)
    return first, second


def _instant(wall: datetime, offset: int) -> int:
    return (wall - _EPOCH) // _ONE_SECOND - offset


def _wall(seconds: int, offset: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds + offset)


def _transition(tz: tzinfo, lo: int, hi: int) -> int:
    """The first second in (lo, hi] with the offset of `hi`; the offset at `lo` differs."""
    target = _offset_at(tz, hi)
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if _offset_at(tz, middle) == target:
            hi = middle
        else:
            lo = middle
    return hi


# ---------------------------------------------------------------------------------------------
# The expression


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
        after = instant_us // US_PER_S + 1
        if after > _SEARCH_END_S:
            return None
        found = [
            seconds
            for seconds in (self._from_wall_of(after, tz), self._in_recent_gap(after, tz))
            if seconds is not None
        ]
        return min(found) * US_PER_S if found else None

    def matches_wall(self, wall: datetime) -> bool:
        """Whether a naive wall-clock time is one the expression names."""
        return self.next_wall(wall.replace(microsecond=0)) == wall

    def next_wall(self, start: datetime) -> datetime | None:
        """The first wall-clock time at or after `start` (naive, whole seconds) that matches.

        An odometer over year, month, day, hour, minute and second: a field with no allowed
        value left carries into the one above it and resets the ones below, so sparse
        expressions cost a few steps per year and the search ends after MAX_YEAR.
        """
        pos = [start.year, start.month, start.day, start.hour, start.minute, start.second]
        level = 0
        while level < 6:
            found = _first_at_least(self._allowed(level, pos), pos[level])
            if found is None:
                if level == 0:
                    return None
                level -= 1
                pos[level] += 1
                _reset_below(pos, level)
                continue
            if found != pos[level]:
                pos[level] = found
                _reset_below(pos, level)
            level += 1
        return datetime(pos[0], pos[1], pos[2], pos[3], pos[4], pos[5])

    def _allowed(self, level: int, pos: list[int]) -> Sequence[int]:
        if level == 0:
            return range(1, MAX_YEAR + 1) if self.years is None else self.years
        if level == 2:
            return _month_days(self.dom, self.dow, pos[0], pos[1])
        fields = (self.months, (), self.hours, self.minutes, self.seconds)
        return fields[level - 1]

    def _from_wall_of(self, after: int, tz: tzinfo) -> int | None:
        """The first occurrence whose wall time is at or after the wall time of `after`."""
        local = datetime.fromtimestamp(after, tz)
        start = local.replace(tzinfo=None, fold=0)
        if local.fold:  # the second pass of a repeated hour: its wall times already fired
            start = _end_of_fold(after, start, tz)
        wall = self.next_wall(start)
        if wall is None:
            return None
        before, after_gap = _wall_offsets(wall, tz)
        first = _instant(wall, before)  # fold 0: the first of two, or shifted past a gap
        if before >= after_gap:
            return first
        # In a gap: a wall time just after the gap may come before the shifted one.
        gap_end = _wall(_transition(tz, _instant(wall, after_gap), first), after_gap)
        later = self.next_wall(gap_end)
        if later is None:
            return first
        return min(first, _instant(later, _wall_offsets(later, tz)[0]))

    def _in_recent_gap(self, after: int, tz: tzinfo) -> int | None:
        """A wall time skipped by a gap in the last day that fires, shifted, at or after `after`."""
        now_offset = _offset_at(tz, after)
        day_ago = after - _DAY_S
        if _offset_at(tz, day_ago) >= now_offset:
            return None
        change = _transition(tz, day_ago, after)
        gap = now_offset - _offset_at(tz, change - 1)
        if gap <= 0:
            return None
        gap_end = _wall(change, now_offset)
        wall = self.next_wall(_wall(after, now_offset) - timedelta(seconds=gap))
        if wall is None or wall >= gap_end:
            return None
        shifted = _instant(wall, _wall_offsets(wall, tz)[0])
        return shifted if shifted >= after else None


def _reset_below(pos: list[int], level: int) -> None:
    for lower in range(level + 1, 6):
        pos[lower] = 1 if lower <= 2 else 0


def _end_of_fold(after: int, wall: datetime, tz: tzinfo) -> datetime:
    """The first wall time after a repeated hour, given `after` in its second pass."""
    earlier_offset = _wall_offsets(wall, tz)[0]
    first_pass = after - (earlier_offset - _offset_at(tz, after))
    return _wall(_transition(tz, first_pass, after), earlier_offset)


# ---------------------------------------------------------------------------------------------
# Plain English


_MONTH_WORDS = tuple(calendar.month_name)[1:]
_DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = ("first", "second", "third", "fourth", "fifth")


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _progression(values: Sequence[int], hi: int) -> tuple[int, int] | None:
    """(start, step) when the values are start, start+step, ... up to the field's top."""
    if len(values) < 2:
        return None
    start, step = values[0], values[1] - values[0]
    if step > 1 and tuple(values) == tuple(range(start, hi + 1, step)):
        return start, step
    return None


def _interval(values: Sequence[int], lo: int, hi: int) -> tuple[int, int] | None:
    """(first, last) when at least three values run on without a hole, wrapping at the top."""
    present = set(values)
    starts = [v for v in values if (v - 1 if v > lo else hi) not in present]
    if len(values) < 3 or len(starts) != 1:
        return None
    first = starts[0]
    last = first + len(values) - 1
    return first, last if last <= hi else last - (hi - lo + 1)


def _clock(hour: int, minute: int, second: int) -> str:
    return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second else "")


def _unit_phrase(values: Sequence[int], hi: int, unit: str) -> str:
    """Seconds or minutes of a sub-hour expression."""
    if len(values) == hi + 1:
        return f"every {unit}"
    if len(values) == 1:
        return f"at {unit} {values[0]}"
    progression = _progression(values, hi)
    if progression is not None:
        start, step = progression
        return f"every {step} {unit}s" + (f" starting at {unit} {start}" if start else "")
    interval = _interval(values, 0, hi)
    if interval is not None:
        return f"every {unit} from {interval[0]} through {interval[1]}"
    return f"at {unit}s {_join([str(v) for v in values])}"


def _hours_phrase(hours: Sequence[int]) -> str:
    """The hours that frame a sub-hour expression."""
    if len(hours) == 24:
        return ""
    interval = _interval(hours, 0, 23)
    if interval is not None:
        return f"between {interval[0]:02d}:00 and {interval[1]:02d}:59"
    progression = _progression(hours, 23)
    if progression is not None:
        return f"every {progression[1]} hours"
    return _join([f"between {h:02d}:00 and {h:02d}:59" for h in hours])


def _hourly(minute: int, second: int, hours: Sequence[int]) -> str:
    """One minute of several hours."""
    at = "" if (minute, second) == (0, 0) else f" at minute {minute}"
    at += f" and second {second}" if second else ""
    if len(hours) == 24:
        return "every hour" + at
    progression = _progression(hours, 23)
    if progression is not None and progression[0] == 0:
        return f"every {progression[1]} hours" + at
    interval = _interval(hours, 0, 23)
    if interval is not None:
        first, last = (_clock(h, minute, second) for h in interval)
        return f"every hour from {first} through {last}"
    return "at " + _join([_clock(h, minute, second) for h in hours])


def _describe_time(expr: CronExpr) -> str:
    seconds, minutes, hours = expr.seconds, expr.minutes, expr.hours
    if len(seconds) == 1 and len(minutes) * len(hours) <= 4:
        return "at " + _join([_clock(h, m, seconds[0]) for h in hours for m in minutes])
    if len(seconds) == 1 and len(minutes) == 1:
        return _hourly(minutes[0], seconds[0], hours)
    parts = [] if seconds == (0,) else [_unit_phrase(seconds, 59, "second")]
    if not (len(minutes) == 60 and len(seconds) > 1):  # "every 15 seconds" says it all
        parts.append(_unit_phrase(minutes, 59, "minute"))
    parts.append(_hours_phrase(hours))
    return ", ".join(part for part in parts if part)


def _rule_phrase(rule: Rule) -> str:
    kind, a, b = rule
    if kind == "L":
        return {0: "the last day", 1: "the day before the last day"}.get(
            a, f"the day {a} days before the last day"
        )
    if kind == "W":
        return f"the weekday nearest day {a}"
    if kind == "LW":
        return "the last weekday"
    if kind == "last":
        return f"the last {_DAY_WORDS[a]}"
    return f"the {_ORDINALS[b - 1]} {_DAY_WORDS[a]}"


def _dom_phrase(spec: DaySpec) -> str:
    days = sorted(spec.values)
    pieces = [_rule_phrase(rule) for rule in sorted(spec.rules)]
    progression = _progression(days, 31)
    interval = _interval(days, 1, 31)
    if progression is not None and not pieces:
        return f"every {progression[1]} days of the month starting on day {progression[0]}"
    if interval is not None:
        pieces.insert(0, f"days {interval[0]} through {interval[1]}")
    elif days:
        pieces.insert(0, ("day " if len(days) == 1 else "days ") + _join([str(d) for d in days]))
    return f"on {_join(pieces)} of the month"


def _weekdays_phrase(values: Iterable[int]) -> str:
    days = sorted(values)
    interval = _interval(days, 0, 6)
    if interval is not None:
        return f"{_DAY_WORDS[interval[0]]} through {_DAY_WORDS[interval[1]]}"
    return "on " + _join([_DAY_WORDS[d] for d in days])


def _dow_phrase(spec: DaySpec) -> str:
    pieces = [_weekdays_phrase(spec.values)] if spec.values else []
    rules = [_rule_phrase(rule) for rule in sorted(spec.rules)]
    if rules:
        pieces.append(f"on {_join(rules)} of the month")
    return " and ".join(pieces)


def _describe_days(expr: CronExpr) -> str:
    dom, dow = expr.dom, expr.dow
    dom_free = dom.star and len(dom.values) == 31
    dow_free = dow.star and len(dow.values) == 7
    if dom_free and dow_free:
        return ""
    if dow_free:
        return _dom_phrase(dom)
    if dom_free:
        return _dow_phrase(dow)
    if dom.star or dow.star:  # Vixie: a day field starting with * makes the two AND
        return f"{_dom_phrase(dom)}, only if it is also {_dow_phrase(dow).removeprefix('on ')}"
    return f"{_dom_phrase(dom)} or {_dow_phrase(dow)}"


def _calendar_phrase(values: Sequence[int], lo: int, hi: int, words: Sequence[str]) -> str:
    """Months (words: month names) or years (words: empty, numbers shown as they are)."""

    def name(v: int) -> str:
        return words[v - lo] if words else str(v)

    progression = _progression(values, hi)
    interval = _interval(values, lo, hi)
    if progression is not None and len(values) > 2:
        return f"every {progression[1]} {'months' if words else 'years'} from {name(values[0])}"
    if interval is not None:
        return f"in {name(interval[0])} through {name(interval[1])}"
    return "in " + _join([name(v) for v in values])


def describe(expr: CronExpr) -> str:
    """A short English preview, e.g. "at 10:15 on the last Friday of the month"."""
    parts = [_describe_time(expr), _describe_days(expr)]
    if len(expr.months) < 12:
        parts.append(_calendar_phrase(expr.months, 1, 12, _MONTH_WORDS))
    if expr.years is not None and len(expr.years) < MAX_YEAR - MIN_YEAR + 1:
        parts.append(_calendar_phrase(expr.years, MIN_YEAR, MAX_YEAR, ()))
    text = ""
    for part in parts:
        if part:
            glue = " " if part.startswith(("on ", "in ")) or not text else ", "
            text = f"{text}{glue}{part}" if text else part
    return text


# ---------------------------------------------------------------------------------------------
# The schedule kind


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """Fires at each wall-clock time the expression names in zone `tz`, from start to end.

    `start` and `end` are inclusive; the expression is parsed once per (text, syntax).
    """

    expr: str
    syntax: CronSyntax = "auto"
    tz: str = "UTC"
    start: Micros | None = None
    end: Micros | None = None
    kind: ClassVar[str] = "cron"

    @property
    def cron(self) -> CronExpr:
        return CronExpr.parse(self.expr, self.syntax)

    def next_after(self, instant: Micros) -> Micros | None:
        if self.start is not None:
            instant = max(instant, self.start - 1)
        upcoming = self.cron.next_after(instant, _zone(self.tz))
        if upcoming is None or (self.end is not None and upcoming > self.end):
            return None
        return upcoming

    def first(self, created_at: Micros) -> Micros | None:
        return self.next_after(created_at)  # next_after already starts no earlier than start

    def describe(self) -> str:
        """E.g. "at 09:30, Monday through Friday (Europe/Berlin), until 2026-12-31T00:00:00Z"."""
        text = f"{describe(self.cron)} ({self.tz})"
        text += "" if self.start is None else f", from {to_iso(self.start)}"
        return text + ("" if self.end is None else f", until {to_iso(self.end)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "expr": self.expr,
            "tz": self.tz,
            "syntax": self.syntax,
            "start": None if self.start is None else to_iso(self.start),
            "end": None if self.end is None else to_iso(self.end),
        }


def _syntax(value: Any) -> CronSyntax:
    if value == "auto" or value is None:
        return "auto"
    if value == "quartz":
        return "quartz"
    if value == "unix":
        return "unix"
    raise InvalidField(f"'syntax' must be auto, quartz or unix, got {value!r}", "syntax")


def _zone_name(value: Any) -> str:
    if value is None:
        return "UTC"
    if not isinstance(value, str):
        raise InvalidField("'tz' must be an IANA time zone name such as Europe/Berlin", "tz")
    try:
        _zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidField(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin", "tz"
        ) from None
    return value


def _bound(value: Any, name: str) -> Micros | None:
    if value is None:
        return None
    if isinstance(value, str):
        instant = parse_instant(value, name)
    elif isinstance(value, int) and not isinstance(value, bool):
        instant = value
    else:
        raise InvalidField(
            f"'{name}' must be an ISO 8601 instant such as 2026-11-21T18:00:00Z", name
        )
    if not 0 <= instant <= MAX_INSTANT:
        raise InvalidField(f"'{name}' is out of range", name)
    return instant


def parse_cron_schedule(data: Mapping[str, Any], now: Micros) -> CronSchedule:
    """Validate a cron schedule from its submitted or stored form.

    `now` is unused: a cron has nothing relative. A schedule that will never fire again is not
    refused here, because stored jobs are rebuilt through this parser too.
    """
    text = data.get("expr")
    if not isinstance(text, str):
        raise InvalidField("'expr' must be a cron expression such as '0 0 12 * * ?'", "expr")
    expr = CronExpr.parse(text, _syntax(data.get("syntax")))
    tz = _zone_name(data.get("tz"))
    start, end = _bound(data.get("start"), "start"), _bound(data.get("end"), "end")
    if start is not None and end is not None and end < start:
        raise InvalidField("'end' must not be before 'start'", "end")
    return CronSchedule(expr=expr.text, syntax=expr.syntax, tz=tz, start=start, end=end)


register("cron", parse_cron_schedule)
