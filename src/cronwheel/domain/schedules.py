"""Schedules are values that answer one question: when is the next occurrence after an instant.

Repeating kinds (cron, simple triggers, rates, ISO 8601 intervals) register here too, so the
engine, the store and every API treat all kinds alike through `next_after`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import (
    MAX_INSTANT,
    Micros,
    from_seconds,
    parse_duration,
    parse_instant,
    to_iso,
)


class Schedule(Protocol):
    kind: ClassVar[str]

    def next_after(self, instant: Micros) -> Micros | None:
        """The first occurrence strictly after `instant`, or None when there is none."""
        ...

    def first(self, created_at: Micros) -> Micros | None:
        """The first occurrence of a job created at `created_at` (a past one-shot still fires)."""
        ...

    def to_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str:
        """A short plain-language account, for previews and listings."""
        ...


@dataclass(frozen=True, slots=True)
class OneShot:
    """Fires once at `at`. A countdown keeps its remaining time while paused."""

    at: Micros
    countdown: bool = False
    kind: ClassVar[str] = "once"

    def next_after(self, instant: Micros) -> Micros | None:
        return self.at if self.at > instant else None

    def first(self, created_at: Micros) -> Micros | None:
        return self.at

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": to_iso(self.at), "countdown": self.countdown}

    def describe(self) -> str:
        return f"{'a countdown ending' if self.countdown else 'once'} at {to_iso(self.at)}"

    def rescheduled(self, at: Micros) -> OneShot:
        return OneShot(at=at, countdown=self.countdown)


@dataclass(frozen=True, slots=True)
class AfterUpstream:
    """No time of its own: the job runs once per upstream scheduled run that completes,
    planned at that run's time (the resolver makes those runs)."""

    kind: ClassVar[str] = "dependencies"

    def next_after(self, instant: Micros) -> Micros | None:
        return None

    def first(self, created_at: Micros) -> Micros | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def describe(self) -> str:
        return "after each completed run of its upstream jobs"


ScheduleParser = Callable[[Mapping[str, Any], Micros], Schedule]
_PARSERS: dict[str, ScheduleParser] = {}


def register(kind: str, parser: ScheduleParser) -> None:
    _PARSERS[kind] = parser


def schedule_from_dict(data: Mapping[str, Any], now: Micros) -> Schedule:
    """Build a schedule from its stored or submitted form; `now` resolves relative delays."""
    kind = data.get("kind")
    parser = _PARSERS.get(str(kind))
    if parser is None:
        known = ", ".join(sorted(_PARSERS))
        raise InvalidField(f"unknown schedule kind {kind!r}; expected one of: {known}", "kind")
    return parser(data, now)


def _parse_once(data: Mapping[str, Any], now: Micros) -> Schedule:
    countdown = bool(data.get("countdown", False))
    at = data.get("at")
    after = data.get("after")
    if (at is None) == (after is None):
        raise InvalidField("give exactly one of 'at' (an instant) or 'after' (a delay)", "at")
    instant = _instant(at) if at is not None else now + _delay(after)
    if not 0 <= instant <= MAX_INSTANT:
        raise InvalidField("'at' is out of range", "at")
    return OneShot(at=instant, countdown=countdown)


def _instant(value: Any) -> Micros:
    if isinstance(value, str):
        return parse_instant(value, "at")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidField("'at' must be an ISO 8601 instant such as 2026-11-21T18:00:00Z", "at")


def _delay(value: Any) -> Micros:
    """A delay is an ISO 8601 duration (PT30S) or a number of seconds."""
    if isinstance(value, str):
        delay = parse_duration(value, "after")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        delay = from_seconds(value, "after") if value >= 0 else -1
    else:
        raise InvalidField("'after' must be an ISO 8601 duration or a number of seconds", "after")
    if delay < 0:
        raise InvalidField("'after' must not be negative", "after")
    return delay


register("once", _parse_once)
register("dependencies", lambda _data, _now: AfterUpstream())
