"""Helpers every dialect adapter needs; each dialect keeps its own envelope and field names."""

from __future__ import annotations

from cronwheel.api.deps import service_of, settings_of
from cronwheel.domain.errors import Conflict, IllegalTransition, NotFound

__all__ = ["SHOWN_CHARS", "STATUS", "json_kind", "service_of", "settings_of", "shown"]

STATUS = {NotFound: 404, Conflict: 409, IllegalTransition: 409}
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
