"""A fast callback receiver for the cronwheel benchmark, run as its own process.

Every request that is not a control request is a callback: the receiver notes when it
arrived (``time.time()`` once the whole request is read), the scheduled instant (the
payload's ``"s"`` in epoch seconds, else the ``Cronwheel-Scheduled-At`` header), the run id,
the job key and the attempt, and answers ``200 ok``.

Control requests (all under ``/_bench/``):

* ``GET /_bench/count``   how many callbacks so far (cheap; poll this while waiting)
* ``GET /_bench/stats``   counts, duplicates and lateness quantiles (lateness = receive time
  minus scheduled instant), first and last arrival, callbacks per second
* ``POST /_bench/reset``  forget everything recorded
* ``POST /_bench/dump?path=FILE``  write every record as JSON to FILE

On SIGTERM or SIGINT the records are written to ``--out`` (if given) before exiting.

Two implementations answer the same protocol: ``raw`` (an asyncio protocol over the
httptools parser, the default: about a third of aiohttp's CPU per request, see
bench/README.md) and ``aiohttp`` (aiohttp.web). Both use uvloop when it is installed.

    python bench/receiver.py --port 8600 [--impl raw|aiohttp] [--out records.json]
        [--delay-ms 50]  (aiohttp only: a slow receiver, for the noisy-namespace bench)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import time
from array import array
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import orjson

CONTROL_PREFIX = "/_bench/"
QUANTILES = (0.5, 0.9, 0.99, 0.999)
MAX_SECONDS_LISTED = 3_600  # per-second arrival counts kept in /stats


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def parse_scheduled(header: str) -> float:
    """An ISO 8601 instant with offset (``...Z``) to epoch seconds; NaN when unparsable."""
    try:
        return datetime.fromisoformat(header).timestamp()
    except ValueError:
        return math.nan


class Recorder:
    """Columns of what arrived; appends only, so recording costs a few hundred nanoseconds."""

    def __init__(self) -> None:
        self.received = array("d")
        self.scheduled = array("d")
        self.attempts = array("i")
        self.run_ids: list[bytes] = []
        self.keys: list[bytes] = []
        self.bad = 0  # callbacks whose scheduled instant could not be read

    def reset(self) -> None:
        self.received = array("d")
        self.scheduled = array("d")
        self.attempts = array("i")
        self.run_ids = []
        self.keys = []
        self.bad = 0

    def record(
        self, at: float, body: bytes, run_id: bytes, key: bytes, attempt: bytes,
        scheduled_header: bytes,
    ) -> None:
        scheduled = math.nan
        if body:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                scheduled = float(orjson.loads(body)["s"])
        if scheduled != scheduled and scheduled_header:
            scheduled = parse_scheduled(scheduled_header.decode())
        if scheduled != scheduled:
            self.bad += 1
        self.received.append(at)
        self.scheduled.append(scheduled)
        self.attempts.append(int(attempt) if attempt.isdigit() else 0)
        self.run_ids.append(run_id)
        self.keys.append(key)

    def stats(self) -> dict[str, Any]:
        count = len(self.received)
        unique_runs = len(set(self.run_ids))
        unique_keys = len(set(self.keys))
        lateness = sorted(
            (r - s) * 1_000.0 for r, s in zip(self.received, self.scheduled, strict=True)
            if s == s
        )
        out: dict[str, Any] = {
            "count": count,
            "unique_runs": unique_runs,
            "unique_keys": unique_keys,
            "duplicate_runs": count - unique_runs,  # the same run id delivered again
            "duplicate_keys": unique_runs - unique_keys,  # a second run of the same job
            "retries": sum(1 for a in self.attempts if a > 1),
            "unparsed": self.bad,
        }
        if not count:
            return out
        first, last = min(self.received), max(self.received)
        span = last - first
        out |= {
            "first": first,
            "last": last,
            "span_s": span,
            "per_s": (count - 1) / span if span > 0 else math.nan,
            "per_second": self._per_second(first),
        }
        if lateness:
            out["lateness_ms"] = {
                "min": lateness[0],
                "mean": sum(lateness) / len(lateness),
                **{f"p{q * 100:g}": quantile(lateness, q) for q in QUANTILES},
                "max": lateness[-1],
            }
        return out

    def _per_second(self, first: float) -> list[int]:
        buckets = [0] * min(MAX_SECONDS_LISTED, int(max(self.received) - first) + 1)
        for at in self.received:
            index = int(at - first)
            if index < len(buckets):
                buckets[index] += 1
        return buckets

    def dump(self, path: str) -> int:
        rows = [
            [r, s if s == s else None, run.decode(), key.decode(), a]
            for r, s, run, key, a in zip(
                self.received, self.scheduled, self.run_ids, self.keys, self.attempts,
                strict=True,
            )
        ]
        with open(path, "wb") as handle:
            handle.write(orjson.dumps({"fields": ["received", "scheduled", "run_id", "key",
                                                  "attempt"], "rows": rows}))
        return len(rows)


def control(recorder: Recorder, method: str, target: str) -> tuple[int, bytes]:
    """Answer a control request; returns (status, JSON body)."""
    parts = urlsplit(target)
    name = parts.path[len(CONTROL_PREFIX):]
    if name == "count":
        return 200, orjson.dumps({"count": len(recorder.received)})
    if name == "stats":
        return 200, orjson.dumps(recorder.stats())
    if name == "reset" and method == "POST":
        recorder.reset()
        return 200, b'{"reset":true}'
    if name == "dump" and method == "POST":
        path = parse_qs(parts.query).get("path", [""])[0]
        if not path:
            return 400, b'{"error":"give ?path="}'
        return 200, orjson.dumps({"written": recorder.dump(path), "path": path})
    return 404, b'{"error":"unknown control request"}'


# -- raw implementation: asyncio protocol + httptools --------------------------------------

_WANTED = {
    b"cronwheel-run-id": "run_id",
    b"cronwheel-job-key": "key",
    b"cronwheel-attempt": "attempt",
    b"cronwheel-scheduled-at": "scheduled",
}
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


class RawProtocol(asyncio.Protocol):
    """One connection; keep-alive and pipelining follow the parser's verdict."""

    def __init__(self, recorder: Recorder) -> None:
        import httptools

        self._recorder = recorder
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._headers: dict[str, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except Exception:  # a malformed request: drop the connection
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        field = _WANTED.get(name.lower())
        if field is not None:
            self._headers[field] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        now = time.time()
        transport = self._transport
        if transport is None:
            return
        url = self._url.decode("latin-1")
        if url.startswith(CONTROL_PREFIX):
            method = self._parser.get_method().decode()
            status, payload = control(self._recorder, method, url)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, b'').decode()}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            )
            transport.write(head.encode() + payload)
        else:
            h = self._headers
            self._recorder.record(
                now, b"".join(self._body), h.get("run_id", b""), h.get("key", b""),
                h.get("attempt", b"0"), h.get("scheduled", b""),
            )
            transport.write(_OK)
        if not self._parser.should_keep_alive():
            transport.close()


async def serve_raw(recorder: Recorder, host: str, port: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RawProtocol(recorder), host, port, backlog=4096)
    print(f"receiver ready impl=raw port={port}", flush=True)
    async with server:
        await stop.wait()


# -- aiohttp implementation ----------------------------------------------------------------


async def serve_aiohttp(recorder: Recorder, host: str, port: int, stop: asyncio.Event,
                        delay: float = 0.0) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if request.path.startswith(CONTROL_PREFIX):
            status, payload = control(recorder, request.method, request.path_qs)
            return web.Response(status=status, body=payload, content_type="application/json")
        h = request.headers
        recorder.record(
            now, body, h.get("Cronwheel-Run-Id", "").encode(),
            h.get("Cronwheel-Job-Key", "").encode(), h.get("Cronwheel-Attempt", "0").encode(),
            h.get("Cronwheel-Scheduled-At", "").encode(),
        )
        if delay:  # a slow receiver: answers `delay` seconds after the callback arrived
            await asyncio.sleep(delay)
        return web.Response(text="ok")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    print(f"receiver ready impl=aiohttp port={port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def main_async(args: argparse.Namespace) -> None:
    recorder = Recorder()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.impl == "raw":
        if args.delay_ms:
            raise SystemExit("--delay-ms needs --impl aiohttp")
        await serve_raw(recorder, args.host, args.port, stop)
    else:
        await serve_aiohttp(recorder, args.host, args.port, stop, args.delay_ms / 1000)
    if args.out:
        written = recorder.dump(args.out)
        print(f"receiver wrote {written} records to {args.out}", flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--impl", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--out", default="", help="write all records here on SIGTERM/SIGINT")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default event loop")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="answer each callback this long after it arrived (aiohttp only)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.host != "127.0.0.1" and args.host != "localhost":
        raise SystemExit("the benchmark receiver only listens on loopback")
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main_async(args))
            return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
