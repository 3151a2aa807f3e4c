"""One cron field: its range and names, and the items it may hold (values, ranges, steps, specials).

Messages name the field and quote the token as written, so every refusal says where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from cronwheel.domain.cron.days import DaySpec, Rule
from cronwheel.domain.errors import InvalidField

MIN_YEAR = 1970
MAX_YEAR = 2199
FIELD = "cron"

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field's name (for messages), range and symbolic names."""

    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # the value of names[0]
    wrap_hi: int | None = None  # the top of the cycle a reversed range wraps over, if not hi
    wraps: bool = True  # whether a reversed range wraps; years run on and never come round

    @property
    def top(self) -> int:
        return self.hi if self.wrap_hi is None else self.wrap_hi


SECOND = FieldDef("second", 0, 59)
MINUTE = FieldDef("minute", 0, 59)
HOUR = FieldDef("hour", 0, 23)
DOM = FieldDef("day-of-month", 1, 31)
MONTH = FieldDef("month", 1, 12, _MONTH_NAMES, 1)
UNIX_DOW = FieldDef("day-of-week", 0, 7, _DAY_NAMES, 0, wrap_hi=6)
QUARTZ_DOW = FieldDef("day-of-week", 1, 7, _DAY_NAMES, 1)
YEAR = FieldDef("year", MIN_YEAR, MAX_YEAR, wraps=False)


def _bad(fd: FieldDef, token: str, problem: str) -> InvalidField:
    return InvalidField(f"{fd.name}: {token!r} {problem}", FIELD)


def _number(text: str) -> int | None:
    """ASCII digits only (str.isdigit also takes '²'); four digits cover every field."""
    if text.isascii() and text.isdigit() and len(text) <= 4:
        return int(text)
    return None


def _value(fd: FieldDef, text: str, token: str) -> int:
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


def _step(fd: FieldDef, text: str, token: str) -> int:
    span = fd.hi - fd.lo + 1
    step = _number(text)
    if step is None or not 1 <= step <= span:
        raise _bad(fd, token, f"step must be 1..{span}")
    return step


def _cycle(fd: FieldDef, start: int, end: int) -> list[int]:
    """A range; a reversed one wraps around (Quartz: FRI-MON, 22-2)."""
    if start <= end:
        return list(range(start, end + 1))
    return list(range(start, fd.top + 1)) + list(range(fd.lo, end + 1))


def _plain(fd: FieldDef, item: str, token: str) -> set[int]:
    """`*`, `v`, `a-b`, each optionally `/step`."""
    base, slash, step_text = item.partition("/")
    step = _step(fd, step_text, token) if slash else 1
    if base == "*":
        start, end = fd.lo, fd.hi
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _value(fd, first, token), _value(fd, last, token)
        if start > end and not fd.wraps:
            raise _bad(fd, token, f"runs backwards; {fd.name} ranges do not wrap, "
                                  f"write {end}-{start}")
    else:
        start = _value(fd, base, token)
        end = fd.top if slash else start
        if slash and start > end:  # `7/2` in Unix day-of-week: Sunday only
            end = start
    return set(_cycle(fd, start, end)[::step])


def _items(fd: FieldDef, token: str) -> list[str]:
    """The list items, upper-cased (names, L and W take any case); messages show `token`."""
    items = token.upper().split(",")
    if "" in items:
        raise _bad(fd, token, "has an empty list item")
    if "?" in token:
        raise _bad(fd, token, "may use '?' only on its own")
    return items


def _special_marks(fd: FieldDef, item: str) -> bool:
    """L, W or # outside a name (JUL and WED hold letters, not marks)."""
    return any(mark in item for mark in "LW#") and not any(name in item for name in fd.names)


def simple_field(fd: FieldDef, token: str) -> tuple[int, ...]:
    """Seconds, minutes, hours, months and years take no letters but names."""
    if token == "?":
        raise _bad(fd, token, "is only allowed in day-of-month or day-of-week")
    values: set[int] = set()
    for item in _items(fd, token):
        if _special_marks(fd, item):
            raise _bad(fd, token, "L, W and # are only allowed in the day fields")
        values |= _plain(fd, item, token)
    return tuple(sorted(values))


def _last_item(item: str, token: str) -> Rule:
    """`L`, `L-n`, `LW` and `L-nW`: a day counted back from the last, nearest weekday if W."""
    nearest = item.endswith("W")
    body = item[:-1] if nearest else item
    offset = 0 if body == "L" else _number(body[2:])
    if offset is None or offset > 30:
        raise _bad(DOM, token, "offset must be 0..30")
    return ("LW" if nearest else "L", offset, 0)


def _dom_item(item: str, token: str) -> tuple[set[int], Rule | None]:
    if item in ("L", "LW") or item.startswith("L-"):
        return set(), _last_item(item, token)
    if item.endswith("W"):
        if _number(item[:-1]) is None:
            raise _bad(DOM, token, "W needs a single day before it, e.g. 15W")
        return set(), ("W", _value(DOM, item[:-1], token), 0)
    if "L" in item or "W" in item or "#" in item:
        raise _bad(DOM, token, "is not a day: expected L, L-n, nW, LW, L-nW or days such as 1-15/2")
    return _plain(DOM, item, token), None


def _weekday(fd: FieldDef, text: str, token: str) -> int:
    """A single weekday, as 0..6 with 0 = Sunday whatever the syntax numbers it."""
    if not text or any(mark in text for mark in "-/*"):
        raise _bad(fd, token, "needs a single weekday before L or #, e.g. 6L, FRIL or 6#3")
    return (_value(fd, text, token) - fd.name_base) % 7


def _dow_item(fd: FieldDef, item: str, token: str) -> tuple[set[int], Rule | None]:
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


def day_field(fd: FieldDef, token: str) -> DaySpec:
    if token in ("*", "?"):
        everything = range(1, 32) if fd is DOM else range(7)
        return DaySpec(star=True, values=frozenset(everything))
    values: set[int] = set()
    rules: set[Rule] = set()
    for item in _items(fd, token):
        found, rule = _dom_item(item, token) if fd is DOM else _dow_item(fd, item, token)
        values |= found
        if rule is not None:
            rules.add(rule)
    return DaySpec(star=token.startswith("*"), values=frozenset(values), rules=frozenset(rules))
