"""The Kafka transport against a real Kafka-protocol broker (tansu) on loopback.

tansu creates a topic on first use, so these tests never create one: that also shows a
delivery to a topic nobody made beforehand succeeds on such a cluster.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from cronwheel.contracts import Delivery
from cronwheel.delivery.kafka import KafkaTransport
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import KafkaTarget
from cronwheel.domain.time import to_iso
from tests.support import free_port

pytestmark = pytest.mark.kafka

SCHEDULED_AT = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@pytest.fixture
async def transport() -> AsyncIterator[KafkaTransport]:
    transport = KafkaTransport()
    try:
        yield transport
    finally:
        await transport.aclose()


def unique_topic() -> str:
    return f"cronwheel-test-{uuid.uuid4().hex[:12]}"


def delivery(
    target: KafkaTarget, run_id: str, key: str, payload: Any, attempt: int = 1
) -> Delivery:
    return Delivery(
        run_id=run_id,
        attempt=attempt,
        job_id=f"job-{key}",
        namespace="billing",
        key=key,
        scheduled_at=SCHEDULED_AT,
        fired_at=SCHEDULED_AT + 2_000,
        target=target,
        payload=payload,
    )


async def consume(bootstrap: str, topic: str, count: int, within: float = 10) -> list[Any]:
    """Read `count` records from the start of `topic`, failing rather than hanging."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(within):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=200)
                for batch in batches.values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_runs_are_produced_with_key_value_and_headers(
    kafka_broker: str, transport: KafkaTransport
) -> None:
    topic = unique_topic()
    target = KafkaTarget((kafka_broker,), topic, timeout=5)
    first = delivery(target, "run-1", "nightly", {"report": "daily", "n": 1})
    second = delivery(target, "run-2", "hourly", [1, 2, "drei"], attempt=2)

    results = [await transport.deliver(first), await transport.deliver(second)]

    for result in results:
        assert result.outcome is AttemptOutcome.SUCCESS, result
        assert result.retryable is False
        assert result.response is not None and result.response.startswith(f"{topic}[")
    records = await consume(kafka_broker, topic, 2)
    by_key = {record.key: record for record in records}
    assert set(by_key) == {b"nightly", b"hourly"}
    for sent in (first, second):
        record = by_key[sent.key.encode()]
        assert record.topic == topic
        assert orjson.loads(record.value) == sent.payload
        headers = dict(record.headers)
        assert headers["Idempotency-Key"] == sent.run_id.encode()
        assert headers["Cronwheel-Attempt"] == str(sent.attempt).encode()
        assert headers["Cronwheel-Run-Id"] == sent.run_id.encode()
        assert headers["Cronwheel-Job-Key"] == sent.key.encode()
        assert headers["Cronwheel-Namespace"] == b"billing"
        assert headers["Cronwheel-Scheduled-At"] == to_iso(SCHEDULED_AT).encode()
    # Both deliveries went through the one producer for this cluster.
    assert list(transport._producers) == [(kafka_broker,)]


async def test_unreachable_broker_is_a_retryable_error(transport: KafkaTransport) -> None:
    target = KafkaTarget((f"127.0.0.1:{free_port()}",), unique_topic(), timeout=2)
    started = time.monotonic()

    result = await transport.deliver(delivery(target, "run-1", "nightly", {"n": 1}))

    assert time.monotonic() - started < 2.5
    assert result.outcome is AttemptOutcome.ERROR
    assert result.retryable is True
    assert result.error is not None and "KafkaConnectionError" in result.error
    # The failed producer is not kept: the next attempt starts afresh.
    assert transport._producers == {}


async def test_silent_broker_times_out_and_leaves_no_producer(transport: KafkaTransport) -> None:
    """A peer that accepts connections but never answers: the start is cut off by the timeout."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = KafkaTarget((f"127.0.0.1:{port}",), unique_topic(), timeout=0.5)
    started = time.monotonic()
    try:
        result = await transport.deliver(delivery(target, "run-1", "nightly", {"n": 1}))
    finally:
        server.close()
        await server.wait_closed()

    assert time.monotonic() - started < 2
    assert result.outcome is AttemptOutcome.TIMEOUT
    assert result.retryable is True
    assert result.error == "no acknowledgement within 0.5s"
    assert transport._producers == {}


async def test_unreachable_cluster_does_not_block_another(
    kafka_broker: str, transport: KafkaTransport
) -> None:
    down = KafkaTarget((f"127.0.0.1:{free_port()}",), unique_topic(), timeout=2)
    up = KafkaTarget((kafka_broker,), unique_topic(), timeout=5)

    failed = await transport.deliver(delivery(down, "run-1", "nightly", None))
    succeeded = await transport.deliver(delivery(up, "run-1", "nightly", None, attempt=2))

    assert failed.outcome is AttemptOutcome.ERROR
    assert succeeded.outcome is AttemptOutcome.SUCCESS
    [record] = await consume(kafka_broker, up.topic, 1)
    assert record.value == b"null"


async def test_concurrent_first_deliveries_start_one_producer(
    kafka_broker: str, transport: KafkaTransport
) -> None:
    target = KafkaTarget((kafka_broker,), unique_topic(), timeout=5)
    runs = [delivery(target, f"run-{i}", f"job-{i}", {"i": i}) for i in range(5)]

    results = await asyncio.gather(*(transport.deliver(run) for run in runs))

    assert [r.outcome for r in results] == [AttemptOutcome.SUCCESS] * 5
    assert len(transport._producers) == 1
    records = await consume(kafka_broker, target.topic, 5)
    assert sorted(r.key for r in records) == [f"job-{i}".encode() for i in range(5)]
