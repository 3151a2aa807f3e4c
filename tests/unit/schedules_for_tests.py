"""A repeating schedule for domain tests that must not depend on cron or intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from cronwheel.domain.time import Micros


@dataclass(frozen=True, slots=True)
class Every:
    """Test-only repeating schedule: start, start + period, start + 2 * period, ..."""

    start: Micros
    period: Micros
    kind: ClassVar[str] = "every"

    def next_after(self, instant: Micros) -> Micros | None:
        if instant < self.start:
            return self.start
        return self.start + ((instant - self.start) // self.period + 1) * self.period

    def first(self, created_at: Micros) -> Micros | None:
        return self.next_after(created_at - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "period": self.period}

    def describe(self) -> str:
        return f"every {self.period} us from {self.start}"
