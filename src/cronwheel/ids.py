"""Time-ordered unique ids (UUIDv7 layout), made before insert so batches need no RETURNING.

Ids made by one process are strictly increasing, even within one millisecond (RFC 9562's
"monotonic random" method): listings ordered by id ("newest first") then never swap two
runs made in the same millisecond.
"""

from __future__ import annotations

import os
import threading
import time

_COUNTER_BITS = 74  # rand_a (12) and rand_b (62): random, or the last one plus one
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_lock = threading.Lock()
_last_ms = -1
_last_counter = 0


def _next(ms: int) -> tuple[int, int]:
    """(ms, counter) after the last id: a fresh random counter in a new millisecond, the
    last one plus one otherwise (spilling into the next millisecond if it overflows)."""
    global _last_ms, _last_counter
    with _lock:
        if ms > _last_ms:
            rand = int.from_bytes(os.urandom(10), "big")
            counter = ((rand >> 68) & 0xFFF) << 62 | (rand & ((1 << 62) - 1))
        else:  # the same millisecond, or the clock stepped back: keep counting
            ms, counter = _last_ms, _last_counter + 1
            if counter > _COUNTER_MAX:
                ms, counter = ms + 1, 0
        _last_ms, _last_counter = ms, counter
    return ms, counter


def new_id() -> str:
    ms, counter = _next(time.time_ns() // 1_000_000)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= (counter >> 62) << 64  # rand_a: 12 bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= counter & ((1 << 62) - 1)  # rand_b: 62 bits
    text = f"{value:032x}"  # str(uuid.UUID(int=value)), without building the UUID object
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
