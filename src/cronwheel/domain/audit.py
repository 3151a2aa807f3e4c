"""The audit trail's record: who changed what, when, from where, and how it ended.

An entry is written for every change a caller asks for, refusals included; the engine's own
work (fires, claims, results) is not a caller's change and is never recorded. Pure data: the
API fills it in, the store keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import Micros

OK = "ok"
# What a refused or failed change is recorded as, by the status it was answered with.
_REFUSALS = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
             405: "invalid", 409: "conflict", 413: "too_large", 415: "invalid",
             422: "invalid", 429: "rate_limited"}
OUTCOMES = ("ok", "no_change", "invalid", "unauthenticated", "forbidden", "not_found", "conflict",
            "too_large", "rate_limited", "error")
MAX_TEXT = 255
# The status an outcome stands for when its entry is written inside the change's own
# transaction, before the answer (and its status) exists.
WRITTEN_STATUS = {OK: 200, "conflict": 409}


def outcome_of_status(status: int) -> str:
    """The outcome a response's status stands for: `ok` below 400, `error` for a 5xx."""
    if status < 400:
        return OK
    return _REFUSALS.get(status, "error" if status >= 500 else "invalid")


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Text as stored: a caller's long path or key is cut, never refused."""
    return None if text is None else text[:limit]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change (or refused change). `action` names the operation (`create_job`,
    `revoke_token`, `delayjob.submit_job`); `app` and `token_prefix` are None when the caller
    presented no valid credential; `detail` holds small facts (the method and path, how many
    jobs a batch held, how many refusals were dropped)."""

    id: str
    at: Micros
    action: str
    outcome: str
    status: int
    app: str | None = None
    token_prefix: str | None = None
    role: str | None = None
    user: str | None = None
    address: str | None = None
    namespace: str | None = None
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to list; every field set must match (`since` inclusive, `until`
    exclusive)."""

    app: str | None = None
    namespace: str | None = None
    action: str | None = None
    outcome: str | None = None
    token_prefix: str | None = None
    since: Micros | None = None
    until: Micros | None = None


@dataclass(frozen=True, slots=True)
class AuditCursor:
    """Where a page ended: entries go newest first, by (at, id)."""

    at: Micros
    id: str

    def encode(self) -> str:
        return f"{self.at}.{self.id}"

    @staticmethod
    def decode(text: str) -> AuditCursor:
        at, _, entry_id = text.partition(".")
        if not at.isdigit() or len(at) > 19 or not 1 <= len(entry_id) <= 36:
            raise InvalidField("cursor is not one this API returned", "cursor")
        return AuditCursor(int(at), entry_id)

    @staticmethod
    def after(entry: AuditEntry) -> AuditCursor:
        return AuditCursor(entry.at, entry.id)


def older(entry: AuditEntry, cursor: AuditCursor | None) -> bool:
    """Whether `entry` comes after `cursor` in newest-first order."""
    return cursor is None or (entry.at, entry.id) < (cursor.at, cursor.id)


def matches(entry: AuditEntry, where: AuditFilter) -> bool:
    return (
        (where.app is None or entry.app == where.app)
        and (where.namespace is None or entry.namespace == where.namespace)
        and (where.action is None or entry.action == where.action)
        and (where.outcome is None or entry.outcome == where.outcome)
        and (where.token_prefix is None or entry.token_prefix == where.token_prefix)
        and (where.since is None or entry.at >= where.since)
        and (where.until is None or entry.at < where.until)
    )
