"""The days of one month that the two day fields allow.

Plain day numbers and weekdays are sets; Quartz's calendar-relative specials (`L`, `L-n`, `nW`,
`LW`, `nL`, `n#k`) are rules resolved here against each month's length and first weekday.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass

# A calendar-relative day rule: ("L", offset, 0) is L-offset, ("W", day, 0) is dayW,
# ("LW", offset, 0) is L-offsetW (LW when 0), ("last", weekday, 0) is weekdayL,
# ("#", weekday, k) is weekday#k.
Rule = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class DaySpec:
    """One of the two day fields: plain values plus calendar-relative rules.

    `star` records that the field was written starting with `*` or `?`: Vixie cron then ANDs
    the two day fields instead of ORing them, and Quartz ignores the `?` field.
    """

    star: bool
    values: frozenset[int]  # days of the month 1..31, or weekdays 0..6 with 0 = Sunday
    rules: frozenset[Rule] = frozenset()


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


def _rule_day(rule: Rule, length: int, first: int) -> int | None:
    """The day of a month (`length` days, day 1 on weekday `first`) a rule picks, if any."""
    kind, a, b = rule
    if kind in ("L", "LW") and length - a < 1:
        return None  # L-30 in February
    if kind == "L":
        return length - a
    if kind == "W":
        return _nearest_weekday(a, length, first)
    if kind == "LW":  # as Quartz: the weekday nearest L-a, staying in the month
        return _nearest_weekday(length - a, length, first)
    if kind == "last":
        return length - (first + length - 1 - a) % 7
    day = 1 + (a - first) % 7 + 7 * (b - 1)  # "#": the b-th weekday a
    return day if day <= length else None


def _rule_days(spec: DaySpec, length: int, first: int) -> set[int]:
    days = (_rule_day(rule, length, first) for rule in spec.rules)
    return {day for day in days if day is not None}


def month_days(dom: DaySpec, dow: DaySpec, year: int, month: int) -> tuple[int, ...]:
    """The days of a month both day fields allow, in order."""
    monday_first, length = calendar.monthrange(year, month)
    first = (monday_first + 1) % 7  # weekday of the 1st, 0 = Sunday
    by_date = {day for day in dom.values if day <= length} | _rule_days(dom, length, first)
    by_weekday = {d for d in range(1, length + 1) if (first + d - 1) % 7 in dow.values}
    by_weekday |= _rule_days(dow, length, first)
    days = by_date & by_weekday if dom.star or dow.star else by_date | by_weekday
    return tuple(sorted(days))
