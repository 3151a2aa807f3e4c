"""Checks shared by the target kinds (targets.py, tcp_target.py), kept apart so that neither
target module has to import the other."""

from __future__ import annotations

from typing import Any

from cronwheel.domain.errors import InvalidField

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 3_600.0


def check_timeout(value: Any, prefix: str) -> float:
    """A delivery timeout in seconds, above 0 and at most MAX_TIMEOUT_S; errors name
    `prefix.timeout`."""
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise InvalidField("timeout must be a number of seconds", f"{prefix}.timeout") from None
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise InvalidField(
            f"timeout must be above 0 and at most {MAX_TIMEOUT_S:g} seconds", f"{prefix}.timeout"
        )
    return timeout
