"""JSON values the server can store: integers must fit in 64 bits.

Python's JSON parser reads any integer, but the store (orjson, SQLite, PostgreSQL) cannot
hold one beyond 64 bits; found late, such a value fails a write, and with it every other
write of the same group. So request values are checked where they enter.
"""

from __future__ import annotations

from typing import Any

LOWEST = -(2**63)
HIGHEST = 2**64 - 1  # orjson writes unsigned 64-bit integers too
INT64_MAX = 2**63 - 1  # the largest a database column holds: offsets, counters


def wide_int_path(value: Any, path: str = "") -> str | None:
    """Where the first integer beyond 64 bits is (`a.b[2]`), "" for the value itself, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if LOWEST <= value <= HIGHEST else path
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, inner in items:
        found = wide_int_path(inner, where)
        if found is not None:
            return found
    return None


def check_json_ints(value: Any) -> Any:
    """For validators: ValueError naming the place of an integer beyond 64 bits."""
    where = wide_int_path(value)
    if where is not None:
        inside = f" at {where}" if where else ""
        raise ValueError(f"integer beyond 64 bits{inside}: the server stores 64-bit integers")
    return value
