"""Kafka targets with aiokafka: one producer per cluster, acks=all, keyed by job key.

A topic that does not exist is left to the cluster: brokers that auto-create topics (tansu,
Kafka with auto.create.topics.enable) create it on first send. Otherwise aiokafka keeps asking
for its metadata, the attempt ends as a retryable TIMEOUT at the target's timeout, and later
attempts succeed once someone creates the topic.
"""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.delivery import RESPONSE_LIMIT, metadata_headers
from cronwheel.delivery.guard import Lookup, TargetRefused, checked_server, refused, system_lookup
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import KafkaTarget

# The cluster refused this very record; sending it again cannot help.
PERMANENT_ERRORS: tuple[type[KafkaError], ...] = (
    RecordTooLargeError,
    MessageSizeTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)

Bootstrap = tuple[str, ...]


def classify(exc: KafkaError) -> tuple[AttemptOutcome, bool]:
    if isinstance(exc, PERMANENT_ERRORS):
        return AttemptOutcome.FAILURE, False
    return AttemptOutcome.ERROR, True


def _headers(delivery: Delivery) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in metadata_headers(delivery).items()]


class KafkaTransport:
    def __init__(
        self, client_id: str = "cronwheel", policy: NetPolicy | None = None,
        lookup: Lookup = system_lookup, default_bootstrap: Bootstrap = (),
    ) -> None:
        self._client_id = client_id
        self._policy = policy or NetPolicy()
        self._lookup = lookup
        # for targets that name no brokers; checked by the guard like a target's own
        self._default_bootstrap = default_bootstrap
        self._producers: dict[Bootstrap, AIOKafkaProducer] = {}
        self._locks: dict[Bootstrap, asyncio.Lock] = {}

    async def _producer(self, bootstrap: Bootstrap) -> AIOKafkaProducer:
        """Start once per cluster; a start that fails or is cut short leaves nothing cached."""
        producer = self._producers.get(bootstrap)
        if producer is not None:
            return producer
        async with self._locks.setdefault(bootstrap, asyncio.Lock()):
            producer = self._producers.get(bootstrap)
            if producer is None:
                servers = [await checked_server(s, self._policy, self._lookup) for s in bootstrap]
                producer = AIOKafkaProducer(  # bootstrap by the addresses the guard checked
                    bootstrap_servers=[a for found in servers for a in found],
                    client_id=self._client_id, acks="all",
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producers[bootstrap] = producer
        return producer

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, KafkaTarget)
        bootstrap = target.bootstrap or self._default_bootstrap
        if not bootstrap:
            error = "the target asks for the server's brokers; none are set " \
                    "(CRONWHEEL_KAFKA_BOOTSTRAP)"
            return DeliveryResult(AttemptOutcome.FAILURE, False, error=error)
        value = orjson.dumps(delivery.payload)
        try:
            async with asyncio.timeout(target.timeout):
                producer = await self._producer(bootstrap)
                sent = await producer.send(
                    target.topic, value, key=delivery.key.encode(), headers=_headers(delivery)
                )
                record = await sent
        except (TimeoutError, KafkaTimeoutError):
            return DeliveryResult(
                AttemptOutcome.TIMEOUT, True, error=f"no acknowledgement within {target.timeout:g}s"
            )
        except TargetRefused as exc:
            return refused(exc)
        except KafkaError as exc:
            outcome, retryable = classify(exc)
            code = getattr(exc, "errno", None)
            error = str(exc)[:RESPONSE_LIMIT]  # aiokafka's text already names the error
            return DeliveryResult(outcome, retryable, code, error=error)
        except OSError as exc:
            return DeliveryResult(AttemptOutcome.ERROR, True, error=f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            raise
        response = f"{record.topic}[{record.partition}]@{record.offset}"
        return DeliveryResult(AttemptOutcome.SUCCESS, False, response=response)

    async def aclose(self) -> None:
        producers = list(self._producers.values())
        self._producers.clear()
        for producer in producers:
            await producer.stop()
