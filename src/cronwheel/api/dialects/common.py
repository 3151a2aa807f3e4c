"""Helpers every dialect adapter needs; each dialect keeps its own envelope and field names."""

from __future__ import annotations

from fastapi import Request

from cronwheel.api.deps import service_of, settings_of
from cronwheel.api.errors import retry_headers
from cronwheel.domain.access import Principal
from cronwheel.domain.errors import Conflict, DomainError, IllegalTransition, NotFound
from cronwheel.domain.limits import LimitExceeded, RateLimited

__all__ = ["SHOWN_CHARS", "STATUS", "caller_of", "json_kind", "retry_after", "service_of",
           "settings_of", "shown"]

STATUS = {NotFound: 404, Conflict: 409, IllegalTransition: 409, LimitExceeded: 403,
          RateLimited: 429}


def caller_of(request: Request) -> Principal | None:
    """The app a dialect request was admitted as (its admission policy sets it); None counts
    as the system app for the per-app limits."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def retry_after(error: BaseException) -> dict[str, str]:
    """The `Retry-After` header of a refusal by the app's submit rate (none for the rest)."""
    return retry_headers(error) if isinstance(error, DomainError) else {}
SHOWN_CHARS = 80


def shown(value: object) -> str:
    """A value quoted for a message, cut short: messages must stay small whatever was sent."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
