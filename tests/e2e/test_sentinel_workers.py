"""The Sentinel dialect end to end, as its clients send it (form bodies, real MD5 appTokens),
with real `cronwheel worker` processes: a shell job fired by a cron expression and a job
depending on it run in that order; a task is killed; its result (stdout) and execute log
(stderr) are paged by offset to the end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from cronwheel.domain.app_keys import app_token
from tests.e2e.test_workers import LEASE_S, until, workers
from tests.servers import RunningServer, running_server

APP = "etl"
LINES = 300
SCRIPT = f'for i in $(seq 1 {LINES}); do echo "row $i of the orders"; done; echo "done" >&2'


async def call(server: RunningServer, key: str, path: str, parameters: dict[str, Any]) -> Any:
    form = {"appName": APP, "appToken": app_token(key, int(time.time())), "user": "alice",
            "parameters": json.dumps(parameters)}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        answer = await client.post(path, data=form)
    body = answer.json()
    assert answer.status_code == 200 and body["code"] == 0, (path, answer.status_code, body)
    return body["data"]


async def tasks(server: RunningServer, key: str, job_id: int) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await call(server, key, "/api/task/query/taskIds",
                                               {"jobId": job_id}))["list"]
    return listed


async def page_to_the_end(server: RunningServer, key: str, path: str, task_id: int,
                          size: int) -> tuple[str, int]:
    """Every page from offset 0 until isEnd; the text and how many pages it took."""
    parts, offset, pages = [], 0, 0
    while True:
        page = await call(server, key, path, {"taskId": task_id, "attemptId": 1,
                                              "offset": offset, "size": size})
        parts.append(page["log"])
        pages += 1
        assert page["offset"] >= offset
        offset = page["offset"]
        if page["isEnd"]:
            return "".join(parts), pages
        assert pages < 1_000


async def test_a_cron_job_and_its_dependent_run_in_order_then_a_kill_and_paged_logs(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path / "cw.db", worker_lease_seconds=LEASE_S) as server:
        made = await server.client.post("/v1/apps", json={
            "name": APP, "namespaces": [APP], "grants": {"job_types": ["shell"]}})
        assert made.status_code == 201, made.text
        key = (await server.client.post(f"/v1/apps/{APP}/sentinel-key", json={})
               ).json()["app_key"]
        async with workers(server, "w1", group="1", concurrency=4):
            upstream = (await call(server, key, "/api/job/submit", {
                "jobName": "orders", "jobType": "shell", "content": SCRIPT,
                "scheduleExpressionList": [
                    {"operatorMode": 1, "expressionType": 1, "expression": "0/3 * * * * ?"}],
            }))["jobId"]
            downstream = (await call(server, key, "/api/job/submit", {
                "jobName": "report", "jobType": "shell", "content": "echo report",
                "dependencyList": [{"operatorMode": 1, "preJobId": upstream,
                                    "commonStrategy": 3, "offsetStrategy": "ch"}],
            }))["jobId"]

            async def both_succeeded() -> tuple[dict[str, Any], dict[str, Any]] | None:
                ups = [t for t in await tasks(server, key, upstream) if t["status"] == 4]
                downs = [t for t in await tasks(server, key, downstream) if t["status"] == 4]
                return (ups[-1], downs[-1]) if ups and downs else None

            first_up, first_down = await until(both_succeeded, "both jobs ran", 30)
            assert first_down["scheduleTime"] == first_up["scheduleTime"]
            assert first_down["startTime"] >= first_up["endTime"]  # after its upstream ended
            await call(server, key, "/api/job/status/set",
                       {"jobIds": [upstream, downstream], "status": 5})

            # as Jarvis keeps them: the result is the task's stdout, the execute log its stderr
            result, pages = await page_to_the_end(server, key, "/api/log/readResult",
                                                  first_up["taskId"], size=500)
            assert pages > 10
            assert result == "".join(f"row {i} of the orders\n" for i in range(1, LINES + 1))
            log, _pages = await page_to_the_end(server, key, "/api/log/readExecuteLog",
                                                first_up["taskId"], size=2)
            assert log == "done\n"
            whole = await call(server, key, "/api/log/readAllResult",
                               {"taskId": first_up["taskId"]})
            assert whole["log"] == result and whole["isEnd"] is True
            whole = await call(server, key, "/api/log/readAllExecuteLog",
                               {"taskId": first_up["taskId"]})
            assert whole["log"] == log and whole["isEnd"] is True

            slow = (await call(server, key, "/api/job/submit", {
                "jobName": "slow", "jobType": "shell", "content": "sleep 60",
                "isTemp": True}))["jobId"]

            async def running() -> dict[str, Any] | None:
                found = await tasks(server, key, slow)
                return found[0] if found and found[0]["status"] == 3 else None

            task = await until(running, "the slow task to run")
            await call(server, key, "/api/task/kill", {"taskIds": [task["taskId"]]})

            async def killed() -> bool:
                status = await call(server, key, "/api/task/query/status",
                                    {"taskId": task["taskId"]})
                return bool(status["status"] == 6)

            await until(killed, "the task to end killed", 20)
