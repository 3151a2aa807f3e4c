"""`http`: one HTTP request made from the worker (inside the worker's network, unlike an
http target, which the server calls).

Spec: `{"url", "method"?: "GET", "headers"?: {}, "body"?: str or JSON, "expect"?: [statuses]}`.
The response body is the result; the status and headers go to the log. A status outside
`expect` (default: any 2xx) fails the task.
"""

from __future__ import annotations

import sys
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import orjson

from cronwheel.domain.errors import InvalidField
from cronwheel.jobtypes import (
    Launch,
    LaunchContext,
    TaskFailed,
    check_keys,
    in_child,
    string_map,
    text,
)

name = "http"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_KEYS = {"url", "method", "headers", "body", "expect"}


def parse(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    check_keys(spec, _KEYS, prefix)
    url = text(spec, "url", prefix)
    assert url is not None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise InvalidField("url must be an http:// or https:// URL with a host", f"{prefix}.url")
    method = spec.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidField(f"method must be one of {list(METHODS)}", f"{prefix}.method")
    out: dict[str, Any] = {"url": url, "method": method.upper(),
                           "headers": string_map(spec, "headers", prefix)}
    if "body" in spec:
        out["body"] = spec["body"]
    if "expect" in spec:
        out["expect"] = _expect(spec["expect"], f"{prefix}.expect")
    return out


def _expect(value: Any, fieldname: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in value
    ):
        raise InvalidField("expect must be a non-empty list of HTTP statuses (100-599)",
                           fieldname)
    return sorted(set(value))


def launch(spec: dict[str, Any], ctx: LaunchContext) -> Launch:
    return in_child(name, spec, ctx)


def _content(spec: dict[str, Any], headers: dict[str, str]) -> bytes | None:
    if "body" not in spec:
        return None
    body = spec["body"]
    if isinstance(body, str):
        return body.encode()
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return orjson.dumps(body)


def run(spec: dict[str, Any], result: BinaryIO) -> None:
    """In the child: stream the response body into `result`, summarise it on stdout."""
    import httpx

    from cronwheel import __version__

    headers = dict(spec.get("headers", {}))
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = f"cronwheel/{__version__}"
    content = _content(spec, headers)
    with httpx.Client(timeout=None) as client, client.stream(
        spec["method"], spec["url"], headers=headers, content=content
    ) as response:
        print(f"HTTP {response.status_code} {response.reason_phrase} "
              f"({spec['method']} {spec['url']})")
        for key, value in response.headers.items():
            print(f"  {key}: {value}")
        size = 0
        for chunk in response.iter_bytes():
            result.write(chunk)
            size += len(chunk)
        print(f"{size} bytes of body")
        sys.stdout.flush()
    expect = spec.get("expect")
    ok = response.status_code in expect if expect else 200 <= response.status_code < 300
    if not ok:
        wanted = expect if expect else "2xx"
        raise TaskFailed(f"HTTP {response.status_code}, expected {wanted}")
