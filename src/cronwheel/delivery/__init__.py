"""Transports, one module per target kind, chosen by the target's `kind`."""

from __future__ import annotations

import asyncio
import contextlib

from cronwheel import __version__
from cronwheel.contracts import Delivery, DeliveryResult, Transport
from cronwheel.domain.delayjob_body import UNIT_MS
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.time import to_iso

RESPONSE_LIMIT = 2_000  # characters of a receiver's answer kept with the attempt
USER_AGENT = f"cronwheel/{__version__}"  # so a receiver's log says who called


METADATA_NAMES = ("Idempotency-Key", "Cronwheel-Attempt", "Cronwheel-Run-Id",
                  "Cronwheel-Job-Key", "Cronwheel-Namespace", "Cronwheel-Scheduled-At")


def metadata_values(delivery: Delivery) -> tuple[str, str, str, str, str, str]:
    """The values of `METADATA_NAMES`, in their order."""
    return (delivery.idempotency_key, str(delivery.attempt), delivery.run_id, delivery.key,
            delivery.namespace, to_iso(delivery.scheduled_at))


def metadata_headers(delivery: Delivery) -> dict[str, str]:
    """The same names on every transport that carries headers."""
    return dict(zip(METADATA_NAMES, metadata_values(delivery), strict=True))


class Transports:
    """Routes each delivery to the transport for its target kind; transports start lazily."""

    def __init__(
        self, transports: dict[str, Transport] | None = None, policy: NetPolicy | None = None,
        kafka_bootstrap: tuple[str, ...] = (), delayjob_unit: str = UNIT_MS,
    ) -> None:
        self._by_kind: dict[str, Transport] = dict(transports or {})
        self._policy = policy or NetPolicy()  # the target guard's, for the transports made here
        self._loading = asyncio.Lock()
        self._kafka_bootstrap = kafka_bootstrap  # for kafka targets that name no brokers
        self._delayjob_unit = delayjob_unit  # of triggerTime in delay-job callbacks

    async def _get(self, kind: str) -> Transport:
        transport = self._by_kind.get(kind)
        if transport is None:
            async with self._loading:
                transport = self._by_kind.get(kind)
                if transport is None:
                    # Importing aiohttp, grpc or aiokafka takes up to half a second: off the
                    # loop, so the first delivery of a kind does not hold up everyone else.
                    transport = await asyncio.to_thread(
                        _default_transport, kind, self._policy, self._kafka_bootstrap,
                        self._delayjob_unit,
                    )
                    self._by_kind[kind] = transport
        return transport

    async def get(self, kind: str) -> Transport:
        """The transport of a kind (Kubernetes callbacks go out through HTTP's)."""
        return await self._get(kind)

    def add(self, kind: str, transport: Transport) -> None:
        """A transport built by the node (it needs the store), unless a test gave one."""
        self._by_kind.setdefault(kind, transport)

    async def warm(self, *kinds: str) -> None:
        """Load transports before they are needed (the node warms HTTP at start)."""
        for kind in kinds:
            await self._get(kind)

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        try:
            transport = self._by_kind.get(delivery.target.kind)  # loaded: no extra coroutine
            if transport is None:
                transport = await self._get(delivery.target.kind)
            return await transport.deliver(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a transport bug must not kill the dispatcher
            return DeliveryResult(AttemptOutcome.ERROR, True, error=f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        for transport in self._by_kind.values():
            with contextlib.suppress(Exception):
                await transport.aclose()


def _default_transport(
    kind: str, policy: NetPolicy, kafka_bootstrap: tuple[str, ...] = (),
    delayjob_unit: str = UNIT_MS,
) -> Transport:
    if kind == "http":
        from cronwheel.delivery.http import HttpTransport

        return HttpTransport(policy=policy, delayjob_unit=delayjob_unit)
    if kind == "grpc":
        from cronwheel.delivery.grpc import GrpcTransport

        return GrpcTransport(policy=policy, delayjob_unit=delayjob_unit)
    if kind == "tcp":
        from cronwheel.delivery.tcp import TcpTransport

        return TcpTransport(per_receiver=128, policy=policy)  # as many as the dispatcher allows
    if kind == "kafka":
        from cronwheel.delivery.kafka import KafkaTransport

        return KafkaTransport(policy=policy, default_bootstrap=kafka_bootstrap)
    if kind == "log":
        from cronwheel.delivery.log import LogTransport

        return LogTransport()
    raise ValueError(f"no transport for target kind {kind!r}")
