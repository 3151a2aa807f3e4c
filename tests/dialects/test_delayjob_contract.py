"""The delay-job service's own contract, as its receivers and clients use it.

Every receiver here is written from the upstream's published contract only: the gRPC
receiver implements `delay.job.JobCallback/trigger`, the HTTP receiver answers
`{"code": ..., "message": ...}`, the Kafka consumer reads a bare topic. Retries use the job's
default policy (1 s backoff), so a fail-then-ok test takes about a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web

from cronwheel.delivery.proto import delayjob_callback_pb2 as cb
from cronwheel.delivery.proto import delayjob_callback_pb2_grpc as cb_grpc
from tests.servers import RunningServer, running_server
from tests.support import free_port

SUBMIT = "/api/v1/submit/job"
NAMESPACE = "delayjob"
PAST = 1666621588  # fires at once
PAST_MS = 1666621588000  # what the callbacks carry: milliseconds, as the upstream's code sends

# The upstream README's quick-start request, verbatim but for the time: LOG, no `type`.
README_LOG_EXAMPLE = b"""{
      "outJobNo":"first_delay_job",
      "triggerTime":1676608523,
      "callbackProtocol":"LOG",
      "callbackEndpoint":"LOG",
      "jobInfo":"I am a delay job."
    }"""


def delay_job(key: str, protocol: str, endpoint: str, **more: Any) -> bytes:
    body = {"outJobNo": key, "triggerTime": PAST, "callbackProtocol": protocol,
            "callbackEndpoint": endpoint, "jobInfo": f"info of {key}", **more}
    return json.dumps(body).encode()


async def submit(server: RunningServer, body: bytes) -> None:
    response = await server.client.post(SUBMIT, content=body)
    assert response.json() == {"code": "ok", "message": "success"}, response.text


async def finished_run(server: RunningServer, key: str, within: float = 15) -> dict[str, Any]:
    """The job's one run once it has ended, with its attempts."""
    deadline = time.monotonic() + within
    while True:
        page = (await server.client.get(f"/v1/jobs/{key}/runs",
                                        params={"namespace": NAMESPACE})).json()
        runs = page["runs"]
        if runs and runs[0]["state"] not in ("pending", "running"):
            detail: dict[str, Any] = (await server.client.get(f"/v1/runs/{runs[0]['id']}")).json()
            return detail
        assert time.monotonic() < deadline, f"run of {key} did not end: {runs}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "cronwheel.db") as running:
        yield running


# -- an HTTP receiver answering the delay-job callback -------------------------------------------


@dataclass
class CodeReceiver:
    """Answers each POST with the next of `codes` (then "ok") in a JSON body."""

    codes: list[str]
    bodies: list[Any] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/client/callback"

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        code = self.codes.pop(0) if self.codes else "ok"
        return web.json_response({"code": code, "message": f"answered {code}"})


@pytest.fixture
async def code_receiver() -> AsyncIterator[CodeReceiver]:
    receiver = CodeReceiver(codes=["fail"])
    app = web.Application()
    app.router.add_post("/api/v1/client/callback", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def test_http_receiver_answering_fail_is_retried_until_it_answers_ok(
    server: RunningServer, code_receiver: CodeReceiver
) -> None:
    await submit(server, delay_job("http_fail_ok", "HTTP", code_receiver.url))
    run = await finished_run(server, "http_fail_ok")
    assert run["state"] == "succeeded"
    assert [a["outcome"] for a in run["attempt_log"]] == ["failure", "success"]
    assert "'fail'" in run["attempt_log"][0]["error"]
    expected = {"outJobNo": "http_fail_ok", "triggerTime": PAST_MS,
                "jobInfo": "info of http_fail_ok"}
    assert code_receiver.bodies == [expected, expected]


async def test_ok_in_any_letter_case_is_a_success(
    server: RunningServer, code_receiver: CodeReceiver
) -> None:
    code_receiver.codes[:] = ["OK"]
    await submit(server, delay_job("http_upper_ok", "HTTP", code_receiver.url))
    run = await finished_run(server, "http_upper_ok")
    assert run["state"] == "succeeded" and run["attempts"] == 1


async def test_a_native_http_job_still_counts_any_2xx_as_success(
    server: RunningServer, code_receiver: CodeReceiver
) -> None:
    job = {"key": "native_2xx", "namespace": NAMESPACE,
           "schedule": {"kind": "once", "at": "2022-10-24T14:26:28Z"},
           "target": {"kind": "http", "url": code_receiver.url}}
    response = await server.client.post("/v1/jobs", json=job)
    assert response.status_code in (200, 201), response.text
    run = await finished_run(server, "native_2xx")
    assert run["state"] == "succeeded" and run["attempts"] == 1  # {"code":"fail"} ignored


# -- a gRPC receiver implementing delay.job.JobCallback ------------------------------------------


class JobCallback(cb_grpc.JobCallbackServicer):
    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        self.requests: list[cb.CallbackReq] = []

    async def trigger(self, request: cb.CallbackReq, context: Any) -> cb.CallbackResp:
        self.requests.append(request)
        code = self.codes.pop(0) if self.codes else "ok"
        return cb.CallbackResp(code=code, message=f"answered {code}")


@pytest.fixture
async def grpc_receiver() -> AsyncIterator[tuple[JobCallback, str]]:
    servicer = JobCallback([])
    receiver = grpc.aio.server()
    cb_grpc.add_JobCallbackServicer_to_server(servicer, receiver)  # type: ignore[no-untyped-call]
    port = receiver.add_insecure_port("127.0.0.1:0")
    await receiver.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        await receiver.stop(None)


async def test_grpc_receiver_answering_ok_gets_the_job_once(
    server: RunningServer, grpc_receiver: tuple[JobCallback, str]
) -> None:
    servicer, address = grpc_receiver
    await submit(server, delay_job("grpc_ok", "GRPC", address))
    run = await finished_run(server, "grpc_ok")
    assert run["state"] == "succeeded" and run["attempts"] == 1
    [request] = servicer.requests
    assert (request.outJobNo, request.triggerTime, request.jobInfo) == (
        "grpc_ok", PAST_MS, "info of grpc_ok")


async def test_grpc_receiver_answering_fail_then_ok_is_retried(
    server: RunningServer, grpc_receiver: tuple[JobCallback, str]
) -> None:
    servicer, address = grpc_receiver
    servicer.codes[:] = ["fail"]
    await submit(server, delay_job("grpc_fail_ok", "grpc", address))
    run = await finished_run(server, "grpc_fail_ok")
    assert run["state"] == "succeeded"
    assert [a["outcome"] for a in run["attempt_log"]] == ["failure", "success"]
    assert [r.outJobNo for r in servicer.requests] == ["grpc_fail_ok", "grpc_fail_ok"]


async def test_grpc_job_without_job_info_sends_an_empty_one(
    server: RunningServer, grpc_receiver: tuple[JobCallback, str]
) -> None:
    servicer, address = grpc_receiver
    body = {"outJobNo": "grpc_no_info", "triggerTime": PAST, "callbackProtocol": "GRPC",
            "callbackEndpoint": address}
    await submit(server, json.dumps(body).encode())
    assert (await finished_run(server, "grpc_no_info"))["state"] == "succeeded"
    assert servicer.requests[0].jobInfo == ""


# -- LOG: the upstream README's own example ------------------------------------------------------


async def test_readme_log_example_verbatim_fires_into_the_server_log(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cronwheel.delivery.log")
    await submit(server, README_LOG_EXAMPLE)
    stored = (await server.client.get("/v1/jobs/first_delay_job",
                                      params={"namespace": NAMESPACE})).json()
    assert stored["schedule"]["countdown"] is False  # no `type`: a normal (type 5) job
    assert stored["target"] == {"kind": "log", "level": "info"}
    run = await finished_run(server, "first_delay_job")
    assert run["state"] == "succeeded" and run["attempts"] == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "cronwheel.delivery.log"]
    assert len(lines) == 1 and "first_delay_job" in lines[0] and run["id"] in lines[0]
    assert "'triggerTime': 1676608523000," in lines[0]  # the body as sent: milliseconds


# -- Kafka: a bare topic on the server's brokers -------------------------------------------------


@pytest.mark.kafka
async def test_bare_kafka_topic_goes_to_the_configured_brokers(
    tmp_path: Path, kafka_broker: str
) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = f"a_topic_for_notify_{uuid.uuid4().hex[:8]}"
    async with running_server(tmp_path / "k.db", kafka_bootstrap=kafka_broker) as server:
        await submit(server, delay_job("kafka_bare", "KAFKA", topic, type=5))
        stored = (await server.client.get("/v1/jobs/kafka_bare",
                                          params={"namespace": NAMESPACE})).json()
        assert stored["target"]["bootstrap"] == "server"  # read when it fires
        assert (await finished_run(server, "kafka_bare"))["state"] == "succeeded"
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_broker,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        async with asyncio.timeout(10):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.key == b"kafka_bare"
    assert json.loads(record.value) == {
        "outJobNo": "kafka_bare", "triggerTime": PAST_MS, "jobInfo": "info of kafka_bare"}
