"""A run that ends on a worker releases its dependents at once: the event comes from the
worker's report, not from the resolver's sweep (set to ten minutes here)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from tests.integration.test_worker_protocol import lease_one, worker
from tests.receivers import HttpReceiver
from tests.servers import running_server
from tests.support import wait_until


async def test_a_worker_success_starts_the_follower_without_waiting_for_the_sweep(
    tmp_path: Path, receiver: HttpReceiver,
) -> None:
    async with running_server(tmp_path / "w.db", dependency_sweep_seconds=600) as server:
        w = await worker(server, "127.0.0.1:20030")
        at = datetime.fromtimestamp(time.time() + 1.0, UTC).isoformat()
        up = {"key": "up", "schedule": {"kind": "once", "at": at}, "retry": {"max_attempts": 1},
              "target": {"kind": "worker", "type": "shell", "spec": {"command": "true"}}}
        after = {"key": "after", "schedule": {"kind": "dependencies"},
                 "depends_on": [{"job": "up"}], "payload": {"key": "after"},
                 "target": {"kind": "http", "url": receiver.url}}
        for body in (up, after):
            answer = await server.client.post("/v1/jobs", json=body)
            assert answer.status_code == 201, answer.text
        task = await lease_one(w, wait=5.0)
        assert task["key"] == "up"
        assert receiver.received == []
        finished = await w.finish(task["task_id"], "success", exit_code=0)
        assert finished.json() == {"recorded": True}
        await wait_until(lambda: len(receiver.received) == 1, timeout=5.0)
        assert receiver.received[0].json() == {"key": "after"}
        runs = (await server.client.get("/v1/jobs/after/runs")).json()["runs"]
        [run] = runs
        assert run["scheduled_at"][:19] == at[:19] and run["state"] == "succeeded"
