"""A small synchronous client of the native API under /v1, for the command line.

Every call returns the server's JSON as plain dicts. Failures come out as two exceptions:
`ApiError` when the server answered with an error (its envelope decoded), and `Unreachable`
when no answer came back at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from cronwheel import tokenfile

DEFAULT_SERVER = "http://127.0.0.1:1989"
DEFAULT_TIMEOUT = 10.0

JsonObject = dict[str, Any]
_NO_BODY = object()


class ClientError(Exception):
    """Base of the errors this client raises."""


class ApiError(ClientError):
    """The server answered with an error; `code`, `message` and `field` come from its envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        details: JsonObject | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details: JsonObject = details or {}


class Unreachable(ClientError):
    """No answer from the server: refused, timed out, bad address."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"cannot reach cronwheel at {server}: {reason}")
        self.server = server
        self.reason = reason


@dataclass(frozen=True)
class Submitted:
    """The job as the server holds it, and whether this call created it (201) or found it (200)."""

    job: JsonObject
    created: bool


@dataclass(frozen=True)
class JobQuery:
    namespace: str | None = None
    state: str | None = None
    key_prefix: str | None = None
    limit: int = 100
    cursor: str | None = None

    def params(self) -> dict[str, str | int]:
        found: dict[str, str | int | None] = {
            "namespace": self.namespace,
            "state": self.state,
            "key_prefix": self.key_prefix,
            "limit": self.limit,
            "cursor": self.cursor,
        }
        return {k: v for k, v in found.items() if v is not None}


@dataclass
class Client:
    """`with Client(url) as api: api.get_job("default", "key")`."""

    server: str = DEFAULT_SERVER
    timeout: float = DEFAULT_TIMEOUT
    transport: httpx.BaseTransport | None = None
    token: str | None = field(default=None, repr=False)  # default: tokenfile.discover
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.server = self.server.strip().rstrip("/")
        if not self.server.startswith(("http://", "https://")):
            raise Unreachable(self.server, "the server address must be an http:// or https:// URL")
        token = tokenfile.discover(self.server, self.token)
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._http = httpx.Client(
                base_url=self.server, timeout=self.timeout, transport=self.transport,
                headers=headers,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise Unreachable(self.server, f"invalid URL ({exc})") from None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- jobs ----------------------------------------------------------------------------------

    def submit_job(self, body: JsonObject) -> Submitted:
        status, answer = self._call("POST", "/v1/jobs", body=body)
        return Submitted(_object(answer, status), created=status == 201)

    def list_jobs(self, query: JobQuery) -> JsonObject:
        """One page: {"jobs": [...], "next_cursor": str | None}."""
        status, answer = self._call("GET", "/v1/jobs", params=query.params())
        return _object(answer, status)

    def all_jobs(self, query: JobQuery) -> list[JsonObject]:
        """Every job that matches, following `next_cursor` page after page."""
        jobs: list[JsonObject] = []
        cursor = query.cursor
        while True:
            page = self.list_jobs(JobQuery(query.namespace, query.state, query.key_prefix,
                                           query.limit, cursor))
            jobs.extend(page.get("jobs") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                return jobs

    def get_job(self, namespace: str, key: str) -> JsonObject:
        return self._job("GET", namespace, key)

    def change_job(self, namespace: str, key: str, action: str) -> JsonObject:
        """POST /v1/jobs/{key}/{action}: pause, resume, cancel (or enable, disable)."""
        return self._job("POST", namespace, key, f"/{action}")

    def trigger_job(self, namespace: str, key: str, payload: Any = _NO_BODY) -> JsonObject:
        """Run the job now; `payload`, when given, replaces the job's payload for this run."""
        body = _NO_BODY if payload is _NO_BODY else {"payload": payload}
        return self._job("POST", namespace, key, "/trigger", body=body)

    def job_runs(
        self, namespace: str, key: str, limit: int = 100, cursor: str | None = None
    ) -> JsonObject:
        """Newest first: {"runs": [...], "next_cursor": str | None}."""
        params: dict[str, str | int] = {"namespace": namespace, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        status, answer = self._call("GET", _job_path(key, "/runs"), params=params)
        return _object(answer, status)

    # -- runs ----------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> JsonObject:
        """The run with its `attempt_log`."""
        status, answer = self._call("GET", f"/v1/runs/{quote(run_id, safe='')}")
        return _object(answer, status)

    def kill_run(self, run_id: str) -> JsonObject:
        status, answer = self._call("POST", f"/v1/runs/{quote(run_id, safe='')}/kill")
        return _object(answer, status)

    def run_log(self, run_id: str, params: dict[str, str | int]) -> JsonObject:
        """One page of a run's output (see docs/workers.md)."""
        status, answer = self._call("GET", f"/v1/runs/{quote(run_id, safe='')}/log",
                                    params=params)
        return _object(answer, status)

    def workers(self) -> JsonObject:
        status, answer = self._call("GET", "/v1/workers")
        return _object(answer, status)

    def runs_on_host(self, host: str) -> JsonObject:
        status, answer = self._call("GET", f"/v1/workers/{quote(host, safe='')}/runs")
        return _object(answer, status)

    def cluster(self) -> JsonObject:
        """The nodes sharing the server's database."""
        status, answer = self._call("GET", "/v1/cluster")
        return _object(answer, status)

    # -- apps and tokens -----------------------------------------------------------------------

    def apps(self) -> JsonObject:
        status, answer = self._call("GET", "/v1/apps")
        return _object(answer, status)

    def create_app(self, body: JsonObject) -> JsonObject:
        status, answer = self._call("POST", "/v1/apps", body=body)
        return _object(answer, status)

    def change_app(self, name: str, body: JsonObject) -> JsonObject:
        status, answer = self._call("PATCH", f"/v1/apps/{quote(name, safe='')}", body=body)
        return _object(answer, status)

    def remove_app(self, name: str) -> None:
        self._call("DELETE", f"/v1/apps/{quote(name, safe='')}")

    def tokens(self, app: str) -> JsonObject:
        status, answer = self._call("GET", f"/v1/apps/{quote(app, safe='')}/tokens")
        return _object(answer, status)

    def create_token(self, app: str, body: JsonObject) -> JsonObject:
        """The answer holds the token itself: the only time the server shows it."""
        status, answer = self._call("POST", f"/v1/apps/{quote(app, safe='')}/tokens", body=body)
        return _object(answer, status)

    def revoke_token(self, app: str, token_id: str) -> JsonObject:
        path = f"/v1/apps/{quote(app, safe='')}/tokens/{quote(token_id, safe='')}/revoke"
        status, answer = self._call("POST", path)
        return _object(answer, status)

    # -- plumbing ------------------------------------------------------------------------------

    def _job(
        self, method: str, namespace: str, key: str, action: str = "", body: Any = _NO_BODY
    ) -> JsonObject:
        status, answer = self._call(
            method, _job_path(key, action), params={"namespace": namespace}, body=body
        )
        return _object(answer, status)

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None = None,
        body: Any = _NO_BODY,
    ) -> tuple[int, Any]:
        try:
            if body is _NO_BODY:
                response = self._http.request(method, path, params=params)
            else:
                response = self._http.request(method, path, params=params, json=body)
        except httpx.RequestError as exc:  # refused, timed out, reset, undecodable
            raise Unreachable(self.server, _reason(exc)) from None
        except httpx.InvalidURL as exc:
            raise Unreachable(self.server, f"invalid URL ({exc})") from None
        return response.status_code, _decode(response)


def _job_path(key: str, action: str = "") -> str:
    return f"/v1/jobs/{quote(key, safe='')}{action}"


def _reason(exc: httpx.RequestError) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({name}{': ' + text if text else ''})"
    return text or name


def _decode(response: httpx.Response) -> Any:
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
        raise ApiError(
            response.status_code, "http_error",
            f"HTTP {response.status_code} {response.reason_phrase} from {response.url} "
            "without cronwheel's error body; is this a cronwheel node?",
        )
    where = error.get("field")
    raise ApiError(
        response.status_code,
        str(error.get("code") or "error"),
        str(error.get("message") or f"HTTP {response.status_code}"),
        where if isinstance(where, str) else None,
        error,
    )


def _object(value: Any, status: int) -> JsonObject:
    if not isinstance(value, dict):
        raise ApiError(status, "bad_response", "the server's answer is not a JSON object")
    return value
