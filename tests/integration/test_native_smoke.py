"""The native API end to end over real HTTP: submit, fire, callback, run history."""

from __future__ import annotations

from cronwheel import __version__
from tests.receivers import HttpReceiver
from tests.servers import RunningServer


async def test_one_shot_job_is_delivered_once_with_idempotency_key(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    body = {
        "key": "invoice-42",
        "schedule": {"kind": "once", "after": 0.1},
        "target": {"kind": "http", "url": receiver.url},
        "payload": {"invoice": 42},
    }
    created = await server.client.post("/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    [got] = await receiver.wait_for(1)
    assert got.json() == {"invoice": 42}
    runs = (await server.client.get("/v1/jobs/invoice-42/runs")).json()["runs"]
    assert len(runs) == 1
    assert got.headers["Idempotency-Key"] == runs[0]["id"]
    assert got.headers["Cronwheel-Attempt"] == "1"
    assert got.headers["User-Agent"] == f"cronwheel/{__version__}"
