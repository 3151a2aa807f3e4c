"""Plain English for a parsed expression: a short preview for listings, not a grammar."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence

from cronwheel.domain.cron.days import DaySpec, Rule
from cronwheel.domain.cron.fields import MAX_YEAR, MIN_YEAR
from cronwheel.domain.cron.parse import CronExpr

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
    if kind == "LW" and a == 0:
        return "the last weekday"
    if kind == "LW":
        return f"the weekday nearest {_rule_phrase(('L', a, 0))}"
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
