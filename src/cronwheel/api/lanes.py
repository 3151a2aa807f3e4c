"""Reads take turns, so they cannot crowd out writes on the API's event loop.

Fifty clients polling job lists keep fifty requests' work ready on the loop at every turn;
a submit then waits behind all of it at each of its awaits, and fell from ~500 to ~10 a
second (bench/README.md, session 11). The reads were bound by the CPU anyway, so letting a
few of them work at once answers as many per second; the others wait their turn before any
of their work starts (before authentication too), and writes and health checks go straight
through. A read gives its turn back when its response starts, so a stream (a log followed as
server-sent events) holds one only while its first page is read.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

READS = frozenset({"GET", "HEAD"})
NEVER_WAIT = frozenset({"/healthz"})  # a load balancer's probe must not queue behind reads


class ReadLanes:
    """ASGI middleware: at most `slots` GET/HEAD requests are worked on at once."""

    def __init__(self, app: ASGIApp, slots: int) -> None:
        self.app = app
        self._slots = asyncio.Semaphore(slots)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READS \
                or scope["path"] in NEVER_WAIT:
            await self.app(scope, receive, send)
            return
        await self._slots.acquire()
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                self._slots.release()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                give_back()  # the rest is sending: the next read may start its work
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            give_back()
