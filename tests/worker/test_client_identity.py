"""The worker client's reading of identity answers, against a real server on loopback (and
a stand-in for an older server that answered a forgotten worker with `not_found`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from cronwheel.worker.client import ApiError, TaskGone, UnknownWorker, WorkerClient
from tests.servers import RunningServer, running_server
from tests.support import TEST_ADMIN_TOKEN, free_port


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cw.db", run_engine=False) as running:
        yield running


async def test_every_call_for_an_id_the_server_does_not_hold_says_register_again(
    server: RunningServer,
) -> None:
    made = await server.client.post("/v1/apps/system/tokens",
                                    json={"role": "worker", "groups": ["etl"]})
    assert made.status_code == 201, made.text
    mine = WorkerClient(server.base_url, token=made.json()["token"])
    other = WorkerClient(server.base_url, token=TEST_ADMIN_TOKEN)
    try:
        registration = await mine.register("w", ["etl"], 1)
        assert registration.id.startswith(f"w_{made.json()['id']}_")
        theirs = (await other.register("them", ["etl"], 1)).id  # an admin's worker
        for call in (mine.heartbeat(theirs, []), mine.lease(theirs, 1, 0),
                     mine.output(theirs, "t", "log", 0, b"x"), mine.stop(theirs),
                     mine.heartbeat("made-up", [])):
            with pytest.raises(UnknownWorker):
                await call
        with pytest.raises(TaskGone):  # its own id, a task that is not its own
            await mine.finish(registration.id, "not-mine", {"outcome": "success"})
        await other.stop(theirs)  # stopped: forgotten, for its own token too
        with pytest.raises(UnknownWorker):
            await other.lease(theirs, 1, 0)
    finally:
        await mine.close()
        await other.close()


async def test_an_older_servers_not_found_on_the_worker_id_also_means_register_again() -> None:
    async def answer(request: web.Request) -> web.Response:
        field = "worker_id" if request.path.endswith("heartbeat") else "task_id"
        body = {"error": {"code": "not_found", "message": "unknown", "field": field}}
        return web.Response(status=404, body=orjson.dumps(body),
                            content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = WorkerClient(f"http://127.0.0.1:{port}", token="t")
    try:
        with pytest.raises(UnknownWorker):
            await client.heartbeat("w", [])
        with pytest.raises(ApiError) as other:
            await client.output("w", "t", "log", 0, b"x")
        assert not isinstance(other.value, UnknownWorker)
    finally:
        await client.close()
        await runner.cleanup()
