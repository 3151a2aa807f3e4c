"""`http`: one HTTP request made from the worker (inside the worker's network, unlike an
http target, which the server calls).

Spec: `{"url", "method"?: "GET", "headers"?: {}, "body"?: str or JSON, "expect"?: [statuses]}`.
The response body is the result; the status and headers go to the log. A status outside
`expect` (default: any 2xx) fails the task.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import orjson

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.netpolicy import NetPolicy, literal_address, policy_from_env
from cronwheel.domain.targets import check_headers, check_url
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
    check_url(url, f"{prefix}.url")
    method = spec.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidField(f"method must be one of {list(METHODS)}", f"{prefix}.method")
    out: dict[str, Any] = {"url": url, "method": method.upper(),
                           "headers": check_headers(string_map(spec, "headers", prefix),
                                                    f"{prefix}.headers")}
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


def checked_addresses(host: str, port: int, policy: NetPolicy) -> list[str]:
    """The addresses of `host` the worker's policy allows; TaskFailed if none."""
    literal = literal_address(host)
    if literal is not None:
        found = [str(literal)]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    allowed, reasons = [], []
    for address in found:
        reason = policy.refusal(ipaddress.ip_address(address.split("%")[0]))
        if reason is None:
            allowed.append(address)
        else:
            reasons.append(reason)
    if not allowed:
        raise TaskFailed(f"target refused: {host}: {'; '.join(reasons)}")
    return allowed


Pinned = tuple[str, dict[str, str], dict[str, Any]]


def pinned(url: str, policy: NetPolicy) -> list[Pinned]:
    """The URL with its host replaced by each checked address, so the connection goes where
    the check said (no second lookup to rebind); Host and TLS's server name keep the name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    fixed = {"Host": parts.netloc.rpartition("@")[2]}
    found = []
    for address in checked_addresses(host, port, policy):
        shown = f"[{address}]" if ":" in address else address
        netloc = f"{shown}:{parts.port}" if parts.port else shown
        found.append((parts._replace(netloc=netloc).geturl(), fixed, {"sni_hostname": host}))
    return found


def run(spec: dict[str, Any], result: BinaryIO) -> None:
    """In the child: stream the response body into `result`, summarise it on stdout."""
    import httpx

    from cronwheel import __version__

    headers = dict(spec.get("headers", {}))
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = f"cronwheel/{__version__}"
    content = _content(spec, headers)
    *others, last = pinned(spec["url"], policy_from_env(os.environ))
    for url, fixed, extensions in others:  # as a connect to the name tries each address
        try:
            status = _request(spec, url, headers | fixed, content, extensions, result)
            break
        except httpx.ConnectError:
            continue
    else:
        url, fixed, extensions = last
        status = _request(spec, url, headers | fixed, content, extensions, result)
    expect = spec.get("expect")
    ok = status in expect if expect else 200 <= status < 300
    if not ok:
        wanted = expect if expect else "2xx"
        raise TaskFailed(f"HTTP {status}, expected {wanted}")


def _request(spec: dict[str, Any], url: str, headers: dict[str, str], content: bytes | None,
             extensions: dict[str, Any], result: BinaryIO) -> int:
    import httpx

    with httpx.Client(timeout=None) as client, client.stream(  # redirects are not followed
        spec["method"], url, headers=headers, content=content, extensions=extensions
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
    return response.status_code
