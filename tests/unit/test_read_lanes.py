"""Reads take turns (api/lanes.py): past `slots` reads at work, the next waits before any
of its work starts; writes and /healthz never wait; a read gives its turn back as soon as its
response starts (a stream holds none while it streams)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Scope, Send

from cronwheel.api.lanes import ReadLanes


class App:
    """An ASGI app whose requests each wait until the test lets them answer."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.answer: dict[str, asyncio.Event] = {}
        self.streaming: dict[str, asyncio.Event] = {}  # a stream's end, after its start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"]
        self.entered.append(name)
        await self.answer.setdefault(name, asyncio.Event()).wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if name in self.streaming:
            await self.streaming[name].wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def request(lanes: ReadLanes, method: str, path: str) -> asyncio.Task[None]:
    scope: Scope = {"type": "http", "method": method, "path": path}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    return asyncio.ensure_future(lanes(scope, receive, send))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def until_entered(app: App, count: int, act: Callable[[], Awaitable[None]]) -> None:
    await act()
    await settle()
    assert len(app.entered) == count, app.entered


async def test_reads_past_the_slots_wait_and_writes_and_health_checks_do_not() -> None:
    app = App()
    lanes = ReadLanes(app, slots=2)
    reads = [request(lanes, "GET", f"/r{i}") for i in range(4)]
    await settle()
    assert app.entered == ["/r0", "/r1"]  # two at work, two waiting
    write = request(lanes, "POST", "/w")
    health = request(lanes, "GET", "/healthz")
    await settle()
    assert app.entered == ["/r0", "/r1", "/w", "/healthz"]

    async def answer(name: str) -> None:
        app.answer.setdefault(name, asyncio.Event()).set()

    await until_entered(app, 5, lambda: answer("/r0"))  # r0 done: r2 starts, not r3
    assert app.entered[-1] == "/r2"
    for name in ("/w", "/healthz", "/r1", "/r2", "/r3"):
        await answer(name)
    await asyncio.wait_for(asyncio.gather(*reads, write, health), 5)
    assert app.entered[-1] == "/r3"


async def test_a_stream_gives_its_turn_back_when_its_response_starts() -> None:
    app = App()
    lanes = ReadLanes(app, slots=1)
    app.streaming["/follow"] = asyncio.Event()
    app.answer["/follow"] = asyncio.Event()
    stream = request(lanes, "GET", "/follow")
    after = request(lanes, "GET", "/list")
    await settle()
    assert app.entered == ["/follow"]
    app.answer["/follow"].set()  # its response starts; it goes on streaming
    await settle()
    assert app.entered == ["/follow", "/list"] and not stream.done()
    app.answer["/list"].set()
    await asyncio.wait_for(after, 5)
    app.streaming["/follow"].set()
    await asyncio.wait_for(stream, 5)


async def test_a_read_that_fails_gives_its_turn_back() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the route failed")

    lanes = ReadLanes(broken, slots=1)
    for _ in range(3):  # a turn kept by a failure would leave the second one waiting forever
        task = request(lanes, "GET", "/x")
        await asyncio.wait([task], timeout=5)
        assert isinstance(task.exception(), RuntimeError)
