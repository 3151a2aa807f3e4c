"""Keyset paging of job lists: where a page starts, and which namespaces a listing may read.

Jobs are listed in (namespace, key) order, compared as code points (UTF-8 byte order, which is
SQLite's BINARY and PostgreSQL's "C" collation), so a page is one range of the unique index
read from its start: its cost is the page's, however many jobs the table holds.

A cursor is opaque to clients: the (namespace, key) a page ended on, as URL-safe base64 of a
JSON pair. A cursor that does not decode is refused naming the field; one that decodes to a
position the caller may not read reveals nothing, as the listing is still filtered by scope.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cronwheel.domain.access import ALL, claim_matches
from cronwheel.domain.errors import InvalidField

JobPosition = tuple[str, str]  # (namespace, key) a page ended on
MAX_CURSOR = 1_200  # characters: two names of 255 characters, escaped, encoded


def encode_cursor(position: JobPosition) -> str:
    raw = json.dumps(list(position), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field_name: str = "cursor") -> JobPosition:
    """The position a cursor names, or InvalidField naming `field_name`."""
    refused = InvalidField(f"{field_name} is not one this API returned", field_name)
    if len(cursor) > MAX_CURSOR:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(part, str) and 0 < len(part) <= 255 for part in value)):
        raise refused
    return value[0], value[1]


def prefix_end(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: there is none)."""
    chars = list(prefix)
    while chars:
        if ord(chars[-1]) < 0x10FFFF:
            chars[-1] = chr(ord(chars[-1]) + 1)
            return "".join(chars)
        chars.pop()
    return None


@dataclass(frozen=True, slots=True)
class Span:
    """Namespaces in [low, high) (high None: no bound); `exact`: the one namespace `low`."""

    low: str
    high: str | None
    exact: bool = False

    def before(self, position: JobPosition) -> bool:
        """Whether every job of the span sorts at or before `position` (nothing left)."""
        return self.high is not None and self.high <= position[0]


def _span_of(claim: str) -> Span:
    if claim == ALL:
        return Span("", None)
    if claim.endswith("*"):
        return Span(claim[:-1], prefix_end(claim[:-1]))
    return Span(claim, claim + "\0", exact=True)


def namespace_spans(namespace: str | None, claims: tuple[str, ...] | None) -> list[Span]:
    """The disjoint ranges of namespaces a listing reads, in order. `claims` are the caller's
    (exact names or `prefix*`), None for every namespace; `namespace` narrows to one."""
    if namespace is not None:
        if claims is None or any(claim_matches(c, namespace) for c in claims):
            return [Span(namespace, namespace + "\0", exact=True)]
        return []
    if claims is None:
        return [Span("", None)]
    merged: list[Span] = []
    for span in sorted((_span_of(c) for c in claims), key=lambda s: s.low):
        last = merged[-1] if merged else None
        if last is not None and (last.high is None or span.low < last.high):
            high = None if last.high is None or span.high is None else max(last.high, span.high)
            merged[-1] = Span(last.low, high, exact=last.exact and high == last.high
                              and span.low == last.low)
        else:
            merged.append(span)
    return merged
