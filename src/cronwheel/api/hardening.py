"""Requests refused before any route sees them: wrong Host, cross-site writes, huge bodies.

* Host (DNS rebinding): a page on evil.example whose name is re-pointed at 127.0.0.1 reaches
  the API with `Host: evil.example`; only the names in `allowed_hosts` are answered (400).
* Cross-site writes (CSRF): the dialects accept form and text/plain bodies, which any web
  page may POST without a preflight. A state-changing request (POST, PUT, PATCH, DELETE)
  whose `Sec-Fetch-Site` is `cross-site`, or whose `Origin` is neither this very host and
  port nor one of the operator's `allowed_hosts`, is refused (403). Clients that are not
  browsers send neither header.
* Body size: a `Content-Length` above `max_body_bytes` is refused (413) before one byte is
  read; a chunked body is counted as it streams and refused once it passes the cap, so no
  request can make the server hold more than the cap in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cronwheel.api.errors import shaped_error

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Probes and scrapers address a node by its IP; these answer anyone and change nothing.
ANY_HOST_PATHS = frozenset({"/healthz", "/metrics"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})


def _bare_host(netloc: str) -> str:
    """`Example.COM:1989` -> `example.com`; `[::1]:1989` -> `::1`."""
    text = netloc.strip().lower().rstrip(".")
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0].rstrip(".") if text.count(":") == 1 else text


@dataclass(frozen=True)
class HostRule:
    """Names answered: exact names, `.example.com` for it and its subdomains, or any."""

    names: frozenset[str]
    any_host: bool = False
    explicit: bool = False  # set by the operator: an Origin naming one of them is trusted

    @classmethod
    def from_settings(
        cls, allowed: Iterable[str] | None, bind_host: str, advertised: str | None
    ) -> HostRule:
        if allowed is None:  # loopback names, and the names the server was told it has
            if bind_host.strip().lower() in _WILDCARD_BINDS:
                return cls(frozenset(), any_host=True)
            names = {*LOOPBACK_NAMES, _bare_host(bind_host)}
            if advertised:
                names.add(_bare_host(urlsplit(advertised).netloc or advertised))
            return cls(frozenset(names))
        names = {_bare_host(n) for n in allowed if n.strip()}  # a port given is ignored
        return cls(frozenset(names), "*" in names, explicit=True)

    def allows(self, host: str) -> bool:
        if self.any_host or host in self.names:
            return True
        return any(n.startswith(".") and (host.endswith(n) or host == n[1:]) for n in self.names)


class Hardening:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, max_body: int, hosts: HostRule) -> None:
        self.app = app
        self.max_body = max_body
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope["method"], scope["path"], headers)
        if refusal is not None:
            await _send_error(scope, send, *refusal)
            return
        await self.app(scope, self._capped(receive), send)

    def _refusal(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, str] | None:
        host = headers.get("host")
        if host is not None and path not in ANY_HOST_PATHS and not self.hosts.allows(
            _bare_host(host)
        ):
            return 400, "host_not_allowed", f"host {host!r} is not one this server answers"
        if method in WRITES and self._cross_site(headers, host):
            return 403, "cross_site_request", "cross-site requests may not change anything"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return 413, "body_too_large", f"request body is over {self.max_body} bytes"
        return None

    def _cross_site(self, headers: dict[str, str], host: str | None) -> bool:
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return True
        origin = headers.get("origin")
        if origin is None:
            return False
        netloc = urlsplit(origin).netloc.lower()
        if not netloc:  # "null": sandboxed frames, file:// pages
            return True
        if host is not None and netloc == host.strip().lower():
            return False
        trusted = self.hosts.explicit and not self.hosts.any_host
        return not (trusted and self.hosts.allows(_bare_host(netloc)))

    def _capped(self, receive: Receive) -> Receive:
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HTTPException(413, f"request body is over {self.max_body} bytes")
            return message

        return capped


async def _send_error(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps(shaped_error(scope["path"], code, message))
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
