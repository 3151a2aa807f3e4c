"""triggerTime in delay-job callbacks: milliseconds by default, as the upstream's code sends
(it stores the client's seconds times 1000 and sends what it stored, moved by a pause);
seconds with CRONWHEEL_DELAYJOB_CALLBACK_TIME_UNIT=s, as its document says.

The document's example (triggerTime 1666621588, in the past) fires at once over real HTTP,
gRPC and Kafka receivers. The pause tests run the dialect's use cases on an engine with a
manual clock, so "paused for 30 s" is exact, then hand the run's delivery to the real
transports and receivers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cronwheel.api.dialects.delayjob_jobs import changer, submit_one
from cronwheel.contracts import Delivery
from cronwheel.delivery.grpc import GrpcTransport
from cronwheel.delivery.http import HttpTransport
from cronwheel.delivery.proto import delayjob_callback_pb2 as cb
from cronwheel.delivery.proto import delayjob_callback_pb2_grpc as cb_grpc
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.time import US_PER_S
from cronwheel.settings import Settings
from cronwheel.testing import ManualClock, MemoryStore, running_engine
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server

SUBMIT = "/api/v1/submit/job"
NAMESPACE = "delayjob"
DOC_TIME = 1666621588  # the document's triggerTime, in seconds: in the past, fires at once
DOC_TIME_MS = 1666621588000


def doc_job(endpoint: str, protocol: str = "HTTP", key: str = "job_no_tutorial") -> bytes:
    """The document's submit example; only the protocol, endpoint and key are the test's."""
    return json.dumps({"outJobNo": key, "triggerTime": DOC_TIME, "callbackProtocol": protocol,
                       "callbackEndpoint": endpoint, "jobInfo": "I am a delay job.",
                       "type": 5}).encode()


async def submit(server: RunningServer, body: bytes) -> None:
    response = await server.client.post(SUBMIT, content=body)
    assert response.json() == {"code": "ok", "message": "success"}, response.text


class JobCallback(cb_grpc.JobCallbackServicer):
    """A receiver written from the upstream's JobCallback.proto: it answers ok."""

    def __init__(self) -> None:
        self.requests: list[cb.CallbackReq] = []
        self.arrived = asyncio.Event()

    async def trigger(self, request: cb.CallbackReq, context: Any) -> cb.CallbackResp:
        self.requests.append(request)
        self.arrived.set()
        return cb.CallbackResp(code="ok", message="success")


@pytest.fixture
async def grpc_receiver() -> AsyncIterator[tuple[JobCallback, str]]:
    servicer = JobCallback()
    server = grpc.aio.server()
    cb_grpc.add_JobCallbackServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def one_request(servicer: JobCallback) -> cb.CallbackReq:
    async with asyncio.timeout(10):
        await servicer.arrived.wait()
    [request] = servicer.requests
    return request


async def stored_payload(server: RunningServer, key: str) -> Any:
    job = await server.client.get(f"/v1/jobs/{key}", params={"namespace": NAMESPACE})
    return job.json()["payload"]


# -- the document's example, submitted in seconds ------------------------------------------------


@pytest.mark.parametrize(("unit", "sent"), [(None, DOC_TIME_MS), ("ms", DOC_TIME_MS),
                                            ("s", DOC_TIME)])
async def test_the_document_example_calls_back_over_http_in_the_unit_set(
    tmp_path: Path, receiver: HttpReceiver, unit: str | None, sent: int
) -> None:
    more: dict[str, Any] = {} if unit is None else {"delayjob_callback_time_unit": unit}
    async with running_server(tmp_path / "c.db", **more) as server:
        await submit(server, doc_job(receiver.url))
        [got] = await receiver.wait_for(1)
        assert got.json() == {"outJobNo": "job_no_tutorial", "triggerTime": sent,
                              "jobInfo": "I am a delay job."}
        assert type(got.json()["triggerTime"]) is int
        assert (await stored_payload(server, "job_no_tutorial"))["triggerTime"] == sent


@pytest.mark.parametrize(("unit", "sent"), [("ms", DOC_TIME_MS), ("s", DOC_TIME)])
async def test_the_document_example_calls_back_over_grpc_in_the_unit_set(
    tmp_path: Path, grpc_receiver: tuple[JobCallback, str], unit: str, sent: int
) -> None:
    servicer, address = grpc_receiver
    async with running_server(tmp_path / "c.db", delayjob_callback_time_unit=unit) as server:
        await submit(server, doc_job(address, "GRPC"))
        request = await one_request(servicer)
    assert (request.outJobNo, request.triggerTime, request.jobInfo) == (
        "job_no_tutorial", sent, "I am a delay job.")


def test_an_unknown_unit_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="delayjob_callback_time_unit"):
        Settings(delayjob_callback_time_unit="us")


@pytest.mark.kafka
@pytest.mark.parametrize(("unit", "sent"), [("ms", DOC_TIME_MS), ("s", DOC_TIME)])
async def test_the_document_example_calls_back_over_kafka_in_the_unit_set(
    tmp_path: Path, kafka_broker: str, unit: str, sent: int
) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = f"a_topic_for_notify_{uuid.uuid4().hex[:8]}"
    async with running_server(tmp_path / "k.db", kafka_bootstrap=kafka_broker,
                              delayjob_callback_time_unit=unit) as server:
        await submit(server, doc_job(topic, "KAFKA"))
        for _ in range(200):
            runs = (await server.client.get("/v1/jobs/job_no_tutorial/runs",
                                            params={"namespace": NAMESPACE})).json()["runs"]
            if runs and runs[0]["state"] == "succeeded":
                break
            await asyncio.sleep(0.05)
        assert runs[0]["state"] == "succeeded", runs
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_broker,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        async with asyncio.timeout(10):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    assert json.loads(record.value) == {"outJobNo": "job_no_tutorial", "triggerTime": sent,
                                        "jobInfo": "I am a delay job."}


# -- a countdown paused and resumed: the time moves, as upstream ---------------------------------

START = 1_700_000_000 * US_PER_S  # 2023-11-14T22:13:20Z, on the manual clock
PAUSED_FOR = 30  # seconds


async def paused_countdown_delivery(endpoint: str, protocol: str, unit: str) -> Delivery:
    """A type 10 job due 10 s after START, paused 2 s in for PAUSED_FOR seconds, then resumed:
    the delivery the engine makes when it fires (8 s after the resume)."""
    clock = ManualClock(START)
    settings = Settings(delayjob_callback_time_unit=unit)
    body = {"outJobNo": "countdown", "type": 10, "triggerTime": START // US_PER_S + 10,
            "callbackProtocol": protocol, "callbackEndpoint": endpoint, "jobInfo": "cd"}
    async with running_engine(MemoryStore(), clock) as engine:
        await submit_one(engine.service, settings, body)
        await engine.advance(2 * US_PER_S)
        await changer("pause")(engine.service, settings, {"outJobNo": "countdown"})
        await engine.advance(PAUSED_FOR * US_PER_S)
        await changer("resume")(engine.service, settings, {"outJobNo": "countdown"})
        await engine.advance(8 * US_PER_S - 1)
        assert engine.transport.received == []
        await engine.advance(1)
        [sent] = engine.transport.received
    assert sent.delivery.scheduled_at == START + (10 + PAUSED_FOR) * US_PER_S
    return sent.delivery


@pytest.mark.parametrize(("unit", "moved"), [
    ("ms", (START // US_PER_S + 10 + PAUSED_FOR) * 1000),  # moved by PAUSED_FOR * 1000
    ("s", START // US_PER_S + 10 + PAUSED_FOR),
])
async def test_a_resumed_countdown_calls_back_over_http_with_the_moved_time(
    receiver: HttpReceiver, unit: str, moved: int
) -> None:
    delivery = await paused_countdown_delivery(receiver.url, "HTTP", unit)
    submitted = delivery.payload["triggerTime"]  # the body fixed at submit
    assert moved - submitted == PAUSED_FOR * (1000 if unit == "ms" else 1)
    transport = HttpTransport(delayjob_unit=unit)
    try:
        result = await transport.deliver(delivery)
    finally:
        await transport.aclose()
    assert result.outcome is AttemptOutcome.SUCCESS
    [got] = receiver.received
    assert got.json() == {"outJobNo": "countdown", "triggerTime": moved, "jobInfo": "cd"}


@pytest.mark.parametrize(("unit", "moved"), [
    ("ms", (START // US_PER_S + 10 + PAUSED_FOR) * 1000),
    ("s", START // US_PER_S + 10 + PAUSED_FOR),
])
async def test_a_resumed_countdown_calls_back_over_grpc_with_the_moved_time(
    grpc_receiver: tuple[JobCallback, str], unit: str, moved: int
) -> None:
    servicer, address = grpc_receiver
    delivery = await paused_countdown_delivery(address, "GRPC", unit)
    transport = GrpcTransport(delayjob_unit=unit)
    try:
        result = await transport.deliver(delivery)
    finally:
        await transport.aclose()
    assert result.outcome is AttemptOutcome.SUCCESS
    request = await one_request(servicer)
    assert (request.outJobNo, request.triggerTime) == ("countdown", moved)
