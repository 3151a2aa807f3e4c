"""The error statuses each native route answers, added to the OpenAPI document.

FastAPI lists only 2xx and its own 422; clients generated from the document then treat a
404 or a 409 as undocumented. Added here:

* every route but the probes': 400 `host_not_allowed` (api/hardening.py);
* every write (POST, PUT, PATCH, DELETE): 403 `cross_site_request` and 413 `body_too_large`;
* every route that needs a token (api/auth.py): 401 `unauthenticated`;
* the native routes below: 404 and 409 where the route can answer them.

A router names the auth statuses its routes answer (`auth.RESPONSES`: 401, and 403 where a
role may be refused); a status listed twice for two reasons is one entry naming both, with
the error envelope. 429 (with `Retry-After`) where the caller's app's submits per second
may refuse the request (docs/security.md, "Limits"). Dialect routes document their own
envelopes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from cronwheel.api.auth import RESPONSES, needs_token
from cronwheel.api.hardening import ANY_HOST_PATHS, WRITES
from cronwheel.api.links import add_links

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "field": {"type": "string"}}, "required": ["code", "message"]}},
}
EVERYWHERE = {400: "the Host header names a host this server does not answer"}
ON_WRITES = {
    403: "a browser's cross-site request (Origin, Sec-Fetch-Site) may not change anything",
    413: "the request body is larger than the server accepts",
}
NOT_FOUND = "no such job, run, worker or task"
CONFLICT = "conflicts with the current state (an existing job, a cancelled job, a lost task)"
LIMITED = ("over the app's submits per second (code rate_limited); Retry-After says how many "
           "seconds to wait")
NO_APP = "no such app, namespace claim or token"
APP_EXISTS = "an app or namespace claim of that name exists"
NO_RULE = "no such app, or it has no such rule, qschedule app or key"

# (method, path): the extra statuses the route answers
NATIVE: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/v1/jobs"): {409: CONFLICT, 429: LIMITED},
    ("post", "/v1/jobs/batch"): {409: CONFLICT, 429: LIMITED},
    ("get", "/v1/jobs/{key}/schedules"): {404: NOT_FOUND},
    ("post", "/v1/jobs/{key}/schedules"): {404: NOT_FOUND, 409: CONFLICT, 429: LIMITED},
    ("patch", "/v1/jobs/{key}/schedules"): {404: NOT_FOUND, 409: CONFLICT, 429: LIMITED},
    ("put", "/v1/jobs/{key}/schedules/{schedule_id}"): {404: NOT_FOUND, 409: CONFLICT,
                                                        429: LIMITED},
    ("delete", "/v1/jobs/{key}/schedules/{schedule_id}"): {404: NOT_FOUND, 409: CONFLICT,
                                                           429: LIMITED},
    ("post", "/v1/jobs/{key}/rerun"): {404: NOT_FOUND, 409: CONFLICT, 429: LIMITED},
    ("get", "/v1/jobs/{key}"): {404: NOT_FOUND},
    ("get", "/v1/jobs/{key}/runs"): {404: NOT_FOUND},
    ("get", "/v1/jobs/{key}/workers"): {404: NOT_FOUND},
    ("post", "/v1/jobs/{key}/workers"): {404: NOT_FOUND, 409: CONFLICT},
    ("get", "/v1/jobs/{key}/alerts"): {404: NOT_FOUND},
    ("get", "/v1/runs/{run_id}"): {404: NOT_FOUND},
    ("post", "/v1/runs/{run_id}/kill"): {404: NOT_FOUND, 409: CONFLICT},
    ("get", "/v1/runs/{run_id}/tasks"): {404: NOT_FOUND},
    ("get", "/v1/runs/{run_id}/log"): {404: NOT_FOUND},
    ("get", "/v1/runs/{run_id}/log/follow"): {404: NOT_FOUND},
    ("post", "/v1/workers/{worker_id}/heartbeat"): {404: NOT_FOUND},
    ("post", "/v1/workers/{worker_id}/lease"): {404: NOT_FOUND},
    ("post", "/v1/workers/{worker_id}/tasks/{task_id}/output"): {404: NOT_FOUND, 409: CONFLICT},
    ("post", "/v1/workers/{worker_id}/tasks/{task_id}/finish"): {404: NOT_FOUND, 409: CONFLICT},
    ("post", "/v1/workers/{worker_id}/stop"): {404: NOT_FOUND},
    ("get", "/v1/jobs/{key}/dependencies"): {404: NOT_FOUND},
    ("delete", "/v1/jobs/{key}"): {404: NOT_FOUND},
    ("post", "/v1/apps"): {409: APP_EXISTS},
    ("get", "/v1/apps/{app}"): {404: NO_APP},
    ("patch", "/v1/apps/{app}"): {404: NO_APP},
    ("delete", "/v1/apps/{app}"): {404: NO_APP},
    ("get", "/v1/apps/{app}/namespaces"): {404: NO_APP},
    ("post", "/v1/apps/{app}/namespaces"): {404: NO_APP, 409: APP_EXISTS},
    ("delete", "/v1/apps/{app}/namespaces/{claim}"): {404: NO_APP},
    ("get", "/v1/apps/{app}/tokens"): {404: NO_APP},
    ("post", "/v1/apps/{app}/tokens"): {404: NO_APP},
    ("post", "/v1/apps/{app}/tokens/{token_id}/revoke"): {404: NO_APP},
    ("get", "/v1/apps/{app}/admission"): {404: NO_APP},
    ("post", "/v1/apps/{app}/admission"): {404: NO_APP, 409: "this dialect and network have "
                                                              "a rule"},
    ("delete", "/v1/apps/{app}/admission/{dialect}/{network}"): {404: NO_RULE},
    ("get", "/v1/apps/{app}/qschedule"): {404: NO_APP},
    ("post", "/v1/apps/{app}/qschedule"): {404: NO_APP, 409: "the id, name or token is taken"},
    ("delete", "/v1/apps/{app}/qschedule/{qid}"): {404: NO_RULE},
    ("get", "/v1/apps/{app}/sentinel-key"): {404: NO_APP},
    ("post", "/v1/apps/{app}/sentinel-key"): {404: NO_APP},
    ("delete", "/v1/apps/{app}/sentinel-key"): {404: NO_RULE},
    ("post", "/v1/runs/{run_id}/remove"): {404: NOT_FOUND, 409: CONFLICT},
} | {
    ("post", f"/v1/jobs/{{key}}/{action}"): {404: NOT_FOUND, 409: CONFLICT}
    for action in ("pause", "resume", "disable", "enable", "cancel")
} | {("post", "/v1/jobs/{key}/trigger"): {404: NOT_FOUND, 409: CONFLICT, 429: LIMITED}}


def _list(responses: dict[str, Any], status: int, description: str) -> None:
    """One entry per status: a second reason for it joins the first one's description."""
    entry = responses.setdefault(str(status), {"description": description})
    if description not in entry["description"]:
        entry["description"] += f"; or {description}"
    entry.setdefault("content", {"application/json": {"schema": ERROR_REF}})


def _add(schema: dict[str, Any], metrics_public: bool) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            extra = {} if path in ANY_HOST_PATHS else dict(EVERYWHERE)
            if needs_token(path, metrics_public):
                extra[401] = RESPONSES[401]["description"]
            if method.upper() in WRITES:
                extra |= ON_WRITES
            extra |= NATIVE.get((method, path), {})
            responses = operation.setdefault("responses", {})
            for status, description in extra.items():
                _list(responses, status, description)
            for status in (401, 403):  # the routers' own auth entries get the envelope too
                if str(status) in responses:
                    _list(responses, status, responses[str(status)]["description"])


def document(app: FastAPI, metrics_public: bool = False) -> None:
    """Wrap `app.openapi` so the document, built once on first use, lists these statuses
    (and the links of api/links.py)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = build()
        if first:
            _add(schema, metrics_public)
            add_links(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
