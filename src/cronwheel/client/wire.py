"""What the sync and async clients share: the address and headers, when to retry, how an
answer is decoded into a value or an error, and how server-sent events are read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from cronwheel import __version__
from cronwheel.client.credentials import find_token
from cronwheel.client.errors import ApiError, Unreachable, api_error

DEFAULT_SERVER = "http://127.0.0.1:1989"
DEFAULT_TIMEOUT = 10.0
RETRY_STATUS = frozenset({502, 503, 504})  # a proxy's or a starting node's answer


@dataclass(frozen=True)
class Retry:
    """How often an idempotent call is sent again after no answer or a 502/503/504, and how
    long to wait before each retry (doubling, capped). A call that may not be repeated is
    retried only when the connection was never made, so it cannot have reached the server."""

    attempts: int = 3
    backoff: float = 0.2
    max_backoff: float = 2.0

    def delay(self, retry: int) -> float:
        return min(self.max_backoff, self.backoff * (1 << (retry - 1)))


NO_RETRY = Retry(attempts=1)


def base_url(server: str) -> str:
    url = server.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise Unreachable(url, "the server address must be an http:// or https:// URL")
    return url


def headers(server: str, token: str | None) -> dict[str, str]:
    found = find_token(server, token)
    sent = {"Accept": "application/json", "User-Agent": f"cronwheel-client/{__version__}"}
    if found:
        sent["Authorization"] = f"Bearer {found}"
    return sent


def should_retry(exc: httpx.RequestError | None, status: int | None, retriable: bool) -> bool:
    """Whether an attempt that ended this way may be sent again."""
    if exc is not None:
        return retriable or isinstance(exc, httpx.ConnectError)
    return retriable and status in RETRY_STATUS


def unreachable(server: str, exc: Exception) -> Unreachable:
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(server, f"no answer in time ({name}{': ' + text if text else ''})")
    if isinstance(exc, httpx.InvalidURL):
        return Unreachable(server, f"invalid URL ({exc})")
    return Unreachable(server, text or name)


def decode(response: httpx.Response) -> Any:
    """The answer's JSON, or the error it carries raised as an ApiError."""
    if response.status_code == 204:
        return None
    try:
        answer = response.json()
    except ValueError:
        answer = None
        if response.is_success:
            raise ApiError(
                response.status_code, "bad_response",
                f"the server answered HTTP {response.status_code} without JSON; "
                "is this a cronwheel node?",
            ) from None
    if response.is_success:
        return answer
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        raise api_error(
            response.status_code, "http_error",
            f"HTTP {response.status_code} {response.reason_phrase} from {response.url} "
            "without cronwheel's error body; is this a cronwheel node?",
        )
    where = error.get("field")
    raise api_error(
        response.status_code,
        str(error.get("code") or "error"),
        str(error.get("message") or f"HTTP {response.status_code}"),
        where if isinstance(where, str) else None,
        error,
    )


@dataclass(frozen=True)
class Event:
    """One server-sent event: `output` (data: a log page) or `end` (data: size, state)."""

    name: str
    data: dict[str, Any]


class EventReader:
    """Turns the lines of a text/event-stream into events, one blank line ending each."""

    def __init__(self) -> None:
        self._name = "message"
        self._data: list[str] = []

    def feed(self, lines: Iterable[str]) -> list[Event]:
        events: list[Event] = []
        for line in lines:
            if line == "":
                if self._data:
                    events.append(Event(self._name, json.loads("\n".join(self._data))))
                self._name, self._data = "message", []
            elif line.startswith("event:"):
                self._name = line[6:].strip()
            elif line.startswith("data:"):
                self._data.append(line[5:].strip())
        return events
