"""Domain errors carry the offending field so every API can name it."""

from __future__ import annotations


class DomainError(Exception):
    """Base for errors that are the caller's fault or a refused state change."""

    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidField(DomainError):
    """A value is malformed or out of range."""

    code = "invalid_argument"


class IllegalTransition(DomainError):
    """A state change the state machine does not allow (e.g. resuming a completed job)."""

    code = "illegal_state"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The key exists with a different definition."""

    code = "conflict"


class ItemErrors(DomainError):
    """Items of one request refused together, each with its index in the request.

    It reads as its first item (message, field, code), so an API that sent one item needs no
    special case; one that sent many lists `items` under its own field names.
    """

    def __init__(self, items: list[tuple[int, DomainError]]) -> None:
        _index, first = items[0]
        super().__init__(first.message, first.field)
        self.code = first.code
        self.items = items
        self.first = first


class Forbidden(DomainError):
    """The caller is known but its role or app may not do this."""

    code = "permission_denied"


class UnknownWorker(NotFound):
    """A worker id the server does not know (never issued, forgotten, stopped, or another
    token's): the worker registers again. One answer for all, so nothing leaks."""

    code = "unknown_worker"

    def __init__(self) -> None:
        super().__init__("unknown worker: register again", "worker_id")
