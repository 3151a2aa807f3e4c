"""A task's output: where its stdout goes, and byte pages of UTF-8 output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cronwheel.domain.errors import InvalidField

STDOUT_TO = ("log", "result")
"""Where a shell or command task's stdout goes: with stderr into the `log` stream (the
default), or alone into the `result` stream (stderr then is the log, and the exit code is
only the finish call's `exit_code`)."""


def stdout_option(spec: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """The spec's `stdout` key, normalised: `{"stdout": "result"}`, or {} for the default."""
    value = spec.get("stdout", "log")
    if value not in STDOUT_TO:
        raise InvalidField(f"stdout must be one of {list(STDOUT_TO)}", f"{prefix}.stdout")
    return {} if value == "log" else {"stdout": value}


def cut_utf8(data: bytes) -> int:
    """Where to end a page so it holds no partial character: before a trailing multi-byte
    sequence that is not complete (the next page starts with it)."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): how long should its sequence be?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 \
                else 4 if byte >> 3 == 0b11110 else 1
            return end if back >= need else end - back
    return end  # not UTF-8 at all: keep the bytes as they are
