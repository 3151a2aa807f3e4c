"""Cron against independent definitions: a brute-force walk of wall times, and the
Quartz day rules written the plain way. Hypothesis draws the expressions."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from cronwheel.domain.cron import CronExpr
from cronwheel.domain.time import from_datetime, to_datetime
from tests.unit.cron_support import BERLIN, NY, S, us

# ---------------------------------------------------------------------------------------------
# Properties against an independent brute force


ZONES = ["UTC", NY, BERLIN, "Australia/Lord_Howe", "Asia/Kolkata"]
# Around the 2026 transitions of the zones above, where the interesting cases live.
TRANSITIONS = [
    (NY, us("2026-03-08T07:00:00Z")),
    (NY, us("2026-11-01T06:00:00Z")),
    (BERLIN, us("2026-03-29T01:00:00Z")),
    (BERLIN, us("2026-10-25T01:00:00Z")),
    ("Australia/Lord_Howe", us("2026-04-04T15:00:00Z")),
    ("Australia/Lord_Howe", us("2026-10-03T15:30:00Z")),
]
HOUR = 3_600 * S


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]
    star: bool


@st.composite
def fields(draw: st.DrawFn, lo: int, hi: int, names: tuple[str, ...] = (), base: int = 0) -> Field:
    """A field written one of the ways cron allows, with the values it must mean."""

    def show(v: int) -> str:
        if names and lo <= v - base < len(names) and draw(st.booleans()):
            return names[v - base]
        return str(v)

    kind = draw(st.sampled_from(["star", "one", "list", "range", "wrap", "step", "from"]))
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(lo, hi))
    step = draw(st.integers(1, hi - lo + 1))
    if kind == "star":
        return Field("*", frozenset(range(lo, hi + 1)), True)
    if kind == "one":
        return Field(show(a), frozenset([a]), False)
    if kind == "list":
        values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4))
        return Field(",".join(show(v) for v in values), frozenset(values), False)
    if kind == "range":
        a, b = min(a, b), max(a, b)
        return Field(f"{show(a)}-{show(b)}", frozenset(range(a, b + 1)), False)
    if kind == "wrap" and a > b:
        values = [*range(a, hi + 1), *range(lo, b + 1)]
        return Field(f"{show(a)}-{show(b)}", frozenset(values), False)
    if kind == "step":
        return Field(f"*/{step}", frozenset(range(lo, hi + 1, step)), True)
    return Field(f"{show(a)}/{step}", frozenset(range(a, hi + 1, step)), False)


@dataclass(frozen=True)
class Unix:
    minute: Field
    hour: Field
    dom: Field
    month: Field
    dow: Field

    @property
    def text(self) -> str:
        return " ".join(f.text for f in (self.minute, self.hour, self.dom, self.month, self.dow))

    def day_matches(self, day: date) -> bool:
        by_date = day.day in self.dom.values
        by_weekday = day.isoweekday() % 7 in {v % 7 for v in self.dow.values}
        if self.dom.star or self.dow.star:
            return by_date and by_weekday and day.month in self.month.values
        return (by_date or by_weekday) and day.month in self.month.values


DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

unix_exprs = st.builds(
    Unix,
    fields(0, 59),
    fields(0, 23),
    fields(1, 31),
    fields(1, 12, MONTH_NAMES, 1),
    fields(0, 6, DOW_NAMES, 0),
)
STAR_DAY = Field("*", frozenset(range(1, 32)), True)
STAR_MONTH = Field("*", frozenset(range(1, 13)), True)
STAR_DOW = Field("*", frozenset(range(7)), True)
# Busy in the small hours, where the transitions are, so that gaps and repeats get hit.
night_exprs = st.builds(
    Unix,
    fields(0, 59),
    st.one_of(
        st.lists(st.integers(0, 4), min_size=1, max_size=3).map(
            lambda hours: Field(",".join(map(str, hours)), frozenset(hours), False)
        ),
        st.sampled_from(
            [
                Field("2", frozenset({2}), False),
                Field("1,2", frozenset({1, 2}), False),
                Field("2,4", frozenset({2, 4}), False),
                Field("1-3", frozenset({1, 2, 3}), False),
                Field("*", frozenset(range(24)), True),
            ]
        ),
    ),
    st.just(STAR_DAY),
    st.just(STAR_MONTH),
    st.just(STAR_DOW),
)
# A zone and an instant within two hours of one of its transitions, often the hour after.
near_transitions = st.sampled_from(TRANSITIONS).flatmap(
    lambda pair: st.tuples(
        st.just(pair[0]),
        st.one_of(
            st.integers(pair[1] - 2 * HOUR, pair[1] + 2 * HOUR),
            st.integers(pair[1], pair[1] + HOUR),  # just after a gap, or in a second pass
        ),
    )
)
instants = st.one_of(
    st.integers(us("2025-06-01T00:00:00Z"), us("2027-06-01T00:00:00Z")),
    near_transitions.map(lambda pair: pair[1]),
)


def brute_next(expr: Unix, after: int, zone: ZoneInfo, days: int = 800) -> int | None:
    """The definition, walked day by day: each matching wall time fires at its fold-0 instant.

    Fold 0 is the first of a repeated time and, in a gap, the time shifted by the gap.
    """
    after_s = after // S
    day = datetime.fromtimestamp(after_s, zone).date() - timedelta(days=1)
    best: int | None = None
    for _ in range(days):
        if best is not None and day > datetime.fromtimestamp(best, zone).date() + timedelta(1):
            break
        if expr.day_matches(day):
            for hour in sorted(expr.hour.values):
                for minute in sorted(expr.minute.values):
                    wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                    instant = int(wall.timestamp())
                    if instant > after_s and (best is None or instant < best):
                        best = instant
        day += timedelta(days=1)
    return None if best is None else best * S


@settings(max_examples=250, deadline=None)
@given(unix_exprs, instants, st.sampled_from(ZONES))
def test_unix_matches_brute_force(expr: Unix, after: int, tz: str) -> None:
    zone = ZoneInfo(tz)
    expected = brute_next(expr, after, zone)
    got = CronExpr.parse(expr.text).next_after(after, zone)
    if expected is None:  # nothing within the brute force's 800 days
        assert got is None or got > after + 790 * 86_400 * S
    else:
        assert got == expected


@settings(max_examples=250, deadline=None)
@given(night_exprs, near_transitions)
def test_around_transitions_matches_brute_force(expr: Unix, near: tuple[str, int]) -> None:
    tz, after = near
    zone = ZoneInfo(tz)
    assert CronExpr.parse(expr.text).next_after(after, zone) == brute_next(expr, after, zone)


@settings(max_examples=150, deadline=None)
@given(st.one_of(unix_exprs, night_exprs), instants, st.sampled_from(ZONES))
def test_successive_fires_increase_and_match(expr: Unix, after: int, tz: str) -> None:
    zone = ZoneInfo(tz)
    cron = CronExpr.parse(expr.text)
    instant = after
    for _ in range(5):
        upcoming = cron.next_after(instant, zone)
        if upcoming is None:
            return
        assert upcoming > instant
        assert upcoming % S == 0
        # asking again from anywhere before it gives the same answer
        assert cron.next_after(upcoming - 1, zone) == upcoming
        assert cron.next_after((instant + upcoming) // 2, zone) == upcoming
        wall = to_datetime(upcoming).astimezone(zone).replace(tzinfo=None)
        assert wall.second == 0
        assert _matches_or_shifted(expr, wall, zone)
        instant = upcoming


def _matches_or_shifted(expr: Unix, wall: datetime, zone: ZoneInfo) -> bool:
    """The wall time matches, or it is a gap's time moved forward by the gap."""

    def matches(w: datetime) -> bool:
        return (
            expr.day_matches(w.date())
            and w.hour in expr.hour.values
            and w.minute in expr.minute.values
        )

    if matches(wall):
        return True
    for minutes in (30, 60):
        earlier = wall - timedelta(minutes=minutes)
        offsets = [earlier.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1)]
        if matches(earlier) and offsets[0] != offsets[1]:
            return True
    return False


# Quartz day rules, defined the plain way rather than computed.


def nearest_weekday(day: date, target: int) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    if target > length:
        return False
    weekdays = [d for d in range(1, length + 1) if date(day.year, day.month, d).weekday() < 5]
    return day.day == min(weekdays, key=lambda d: abs(d - target))


def last_weekday(day: date) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    weekdays = [d for d in range(1, length + 1) if date(day.year, day.month, d).weekday() < 5]
    return day.day == weekdays[-1]


DayRule = tuple[str, Callable[[date], bool]]


def _length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _weekday(day: date) -> int:
    return day.isoweekday() % 7  # 0 = Sunday


@st.composite
def dom_rules(draw: st.DrawFn) -> DayRule:
    kind = draw(st.sampled_from(["L", "L-n", "nW", "LW", "L-nW", "n"]))
    n = draw(st.integers(1, 31))
    offset = draw(st.integers(0, 30))
    if kind == "L":
        return "L", lambda d: d.day == _length(d)
    if kind == "L-n":
        return f"L-{offset}", lambda d: d.day == _length(d) - offset
    if kind == "nW":
        return f"{n}W", lambda d: nearest_weekday(d, n)
    if kind == "LW":
        return "LW", last_weekday
    if kind == "L-nW":
        return f"L-{offset}W", lambda d: (
            _length(d) - offset >= 1 and nearest_weekday(d, _length(d) - offset)
        )
    return str(n), lambda d: d.day == n


@st.composite
def dow_rules(draw: st.DrawFn) -> DayRule:
    kind = draw(st.sampled_from(["nL", "n#k", "L", "n"]))
    weekday = draw(st.integers(0, 6))  # 0 = Sunday; Quartz writes it as weekday + 1
    name = draw(st.sampled_from([str(weekday + 1), DOW_NAMES[weekday]]))
    k = draw(st.integers(1, 5))
    if kind == "nL":
        return f"{name}L", lambda d: _weekday(d) == weekday and d.day + 7 > _length(d)
    if kind == "n#k":
        return f"{name}#{k}", lambda d: _weekday(d) == weekday and (d.day - 1) // 7 + 1 == k
    if kind == "L":
        return "L", lambda d: _weekday(d) == 6
    return name, lambda d: _weekday(d) == weekday


@st.composite
def quartz_days(draw: st.DrawFn) -> tuple[str, Callable[[date], bool]]:
    """A day-of-month or day-of-week field (lists of one or two rules) and the other one '?'."""
    use_dom = draw(st.booleans())
    rules = draw(st.lists(dom_rules() if use_dom else dow_rules(), min_size=1, max_size=2))
    field = ",".join(text for text, _ in rules)
    text = f"0 0 12 {field} * ?" if use_dom else f"0 0 12 ? * {field}"

    def matches(day: date) -> bool:
        return any(rule(day) for _, rule in rules)

    return text, matches


@settings(max_examples=150, deadline=None)
@given(quartz_days(), st.dates(date(2000, 1, 1), date(2150, 12, 31)))
def test_quartz_day_rules_match_their_definitions(
    days: tuple[str, Callable[[date], bool]], start: date
) -> None:
    text, matches = days
    cron = CronExpr.parse(text)
    after = from_datetime(datetime.combine(start, time(12), tzinfo=UTC))
    day = start + timedelta(days=1)
    for _ in range(5 * 366):
        if matches(day):
            expected = from_datetime(datetime.combine(day, time(12), tzinfo=UTC))
            assert cron.next_after(after, UTC) == expected
            return
        day += timedelta(days=1)
    got = cron.next_after(after, UTC)
    assert got is None or got > after + 5 * 365 * 86_400 * S
