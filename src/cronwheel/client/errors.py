"""What the client raises: the server's refusals with their code, field and status, and
the failures to reach it at all."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base of the errors this client raises."""


class ApiError(ClientError):
    """The server answered with an error; `code`, `message` and `field` come from its
    envelope ({"error": {...}}), `status` is the HTTP status, `details` the whole envelope
    (a 409's `existing` job, a batch's `items`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{message} (field: {field})" if field else message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details: dict[str, Any] = details or {}


class BadRequest(ApiError):
    """400 or 422: a field of the request is wrong; `field` names it."""


class Unauthorized(ApiError):
    """401 or 403: no token, a wrong one, or one whose role may not do this."""


class NotFound(ApiError):
    """404: no such job, run or worker."""


class Conflict(ApiError):
    """409: a different job has this key, or the job's state refuses the change."""


class Unreachable(ClientError):
    """No answer from the server: refused, timed out, bad address."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"cannot reach cronwheel at {server}: {reason}")
        self.server = server
        self.reason = reason


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 422: BadRequest, 401: Unauthorized, 403: Unauthorized, 404: NotFound,
    409: Conflict,
}


def api_error(
    status: int, code: str, message: str, field: str | None = None,
    details: dict[str, Any] | None = None,
) -> ApiError:
    """The most specific error for `status`."""
    return _BY_STATUS.get(status, ApiError)(status, code, message, field, details)
