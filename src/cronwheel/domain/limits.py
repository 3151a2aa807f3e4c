"""Per-app limits, pure: which value applies, a token bucket, and a schedule's shortest gap.

The server's settings give a default for every limit; an app's `AppLimits` override wins,
field by field. `None` means unlimited. The `system` app (the first start's, which the quick
start and the benchmarks use) gets no defaults unless the server says so: only its own
overrides, and the server-wide request caps (`max_batch`, `max_payload_bytes`), apply to it.

The bucket is GCRA (a token bucket kept as one number, the instant it would be full again
after what was taken), in integer microseconds, so the same arithmetic serves the API (refuse,
and say when to retry) and the engine (delay a fire to the first instant it may happen).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from cronwheel.domain.access import SYSTEM_APP, AppLimits
from cronwheel.domain.errors import DomainError, InvalidField
from cronwheel.domain.schedules import Schedule
from cronwheel.domain.time import US_PER_S, Micros
from cronwheel.domain.union import Union

GAP_PROBES = 16  # consecutive occurrences looked at to find a schedule's shortest gap


class RateLimited(DomainError):
    """Too many requests for the app's rate: try again after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field)
        self.retry_after = retry_after


class LimitExceeded(DomainError):
    """The app holds as much as its limit allows (jobs held): nothing more until some go."""

    code = "limit_exceeded"


class TooFrequent(InvalidField):
    """A schedule repeats more often than the app's `min_interval_seconds` (a 422)."""


@dataclass(frozen=True, slots=True)
class Quota:
    """The limits that apply to one app: its overrides over the server's defaults."""

    app: str
    max_jobs: int | None = None
    submits_per_second: float | None = None
    submit_burst: int | None = None
    max_batch: int | None = None
    max_payload_bytes: int | None = None
    min_interval_seconds: float | None = None
    fires_per_second: float | None = None

    @property
    def burst(self) -> int:
        """The submit bucket's size: the rate's one second when the server names none."""
        if self.submit_burst is not None:
            return self.submit_burst
        return max(1, math.ceil(self.submits_per_second or 1))


def quota_for(app: str, overrides: AppLimits, defaults: AppLimits,
              system_limited: bool = False) -> Quota:
    """The app's quota: each override, else the server's default (none for `system` unless
    `system_limited`). `max_batch` and `max_payload_bytes` defaults are the server-wide caps
    and apply to every app."""
    base = defaults if app != SYSTEM_APP or system_limited else AppLimits(
        max_batch=defaults.max_batch, max_payload_bytes=defaults.max_payload_bytes)
    values = {f.name: getattr(overrides, f.name) if getattr(overrides, f.name) is not None
              else getattr(base, f.name) for f in fields(AppLimits)}
    return Quota(app=app, **values)


def unlimited(app: str) -> Quota:
    return Quota(app=app)


# -- the bucket --------------------------------------------------------------------------------


@dataclass(slots=True)
class Bucket:
    """`rate` tokens a second, at most `burst` at once. `full_at` is the instant the bucket
    would be full again given what was taken so far (GCRA's theoretical arrival time)."""

    rate: float
    burst: int
    full_at: Micros = 0

    @property
    def step_us(self) -> float:
        return US_PER_S / self.rate

    def wait_us(self, count: int, now: Micros) -> Micros:
        """How long until `count` tokens are there (0: now)."""
        after = max(self.full_at, now) + count * self.step_us
        return max(0, math.ceil(after - self.burst * self.step_us - now))

    def take(self, count: int, now: Micros) -> Micros:
        """Take `count` tokens if they are there and answer 0; else take nothing and answer
        the microseconds to wait."""
        wait = self.wait_us(count, now)
        if wait == 0:
            self.full_at = math.ceil(max(self.full_at, now) + count * self.step_us)
        return wait

    def reserve(self, now: Micros) -> Micros:
        """Take one token, borrowing from the future when there is none: the instant it is
        due (now, or the first instant the rate allows). For fires, which wait, never fail."""
        at = now + self.wait_us(1, now)
        self.full_at = math.ceil(max(self.full_at, now) + self.step_us)
        return at

    def retuned(self, rate: float, burst: int) -> Bucket:
        """The same bucket after the app's limits changed; what was taken stays taken."""
        if rate == self.rate and burst == self.burst:
            return self
        return replace(self, rate=rate, burst=burst)


def retry_after_seconds(wait_us: Micros) -> int:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_us / US_PER_S))


# -- a schedule's shortest gap -----------------------------------------------------------------


def shortest_gap(schedule: Schedule, now: Micros, probes: int = GAP_PROBES) -> Micros | None:
    """The shortest time between two consecutive occurrences among the first `probes` from
    `now` (a cron's gaps repeat, so a few fires show its shortest); None when it fires at most
    once from now."""
    at = schedule.first(now)
    if at is None:
        return None
    if at <= now:  # a past first occurrence (a late one-shot) is not part of the repeats
        at = schedule.next_after(now)
    shortest: Micros | None = None
    for _ in range(probes):
        if at is None:
            break
        following = schedule.next_after(at)
        if following is None:
            break
        gap = following - at
        shortest = gap if shortest is None else min(shortest, gap)
        at = following
    return shortest


def check_interval(schedule: Schedule, min_seconds: float | None, now: Micros,
                   field: str = "schedule") -> None:
    """Refuse a schedule that repeats more often than `min_seconds` (InvalidField naming the
    schedule, or the union item, that does)."""
    if min_seconds is None:
        return
    least = round(min_seconds * US_PER_S)
    if isinstance(schedule, Union):
        for index, item in enumerate(schedule.items):
            _check_gap(item.schedule, least, min_seconds, max(now, item.added_at),
                       f"{field}.items[{index}]")
    _check_gap(schedule, least, min_seconds, now, field)


def _check_gap(schedule: Schedule, least: Micros, min_seconds: float, now: Micros,
               field: str) -> None:
    gap = shortest_gap(schedule, now)
    if gap is not None and gap < least:
        raise TooFrequent(
            f"the schedule repeats every {gap / US_PER_S:g} s; the app's limit "
            f"min_interval_seconds is {min_seconds:g} s", field)
