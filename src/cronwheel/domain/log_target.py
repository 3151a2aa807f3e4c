"""Log targets: the run is written to the server's log and counts as delivered.

This is the delay-job service's `LOG` callback, meant for trying a client out without a
receiver. It has no address and never fails, so it needs no retry and no guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from cronwheel.domain.errors import InvalidField

LOG_LEVELS = ("debug", "info", "warning")


@dataclass(frozen=True, slots=True)
class LogTarget:
    """Each firing becomes one line of the `cronwheel.delivery.log` logger at `level`."""

    level: str = "info"
    kind: ClassVar[str] = "log"
    timeout: ClassVar[float] = 1.0  # every target has one; writing a log line never waits

    @property
    def slot(self) -> str:
        return "log"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "level": self.level}


def parse_log_target(data: dict[str, Any], prefix: str) -> LogTarget:
    level = data.get("level", "info")
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise InvalidField(f"level must be one of {', '.join(LOG_LEVELS)}", f"{prefix}.level")
    return LogTarget(level.lower())
