"""The delay-job management API over gRPC: service delay.job.Job on its own port (1990).

The server starts with the API (see api/app.py). grpc is imported only when the port is set,
so nodes that turn this API off do not pay for it. The servicer is in delayjob_grpc_service;
it admits each call by the `delayjob-grpc` rules, so the port may listen beyond loopback
(CRONWHEEL_DELAYJOB_GRPC_HOST; loopback by default).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cronwheel.api.auditing import AuditTrail
from cronwheel.apps_service import AppService
from cronwheel.service import Service
from cronwheel.settings import Settings

if TYPE_CHECKING:
    import grpc

log = logging.getLogger("cronwheel.api.delayjob_grpc")


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DelayJobGrpcServer:
    """Started and stopped with the API; off when `delayjob_grpc_port` is 0."""

    def __init__(self, service: Service, settings: Settings, apps: AppService,
                 required: bool | None = None, trail: AuditTrail | None = None) -> None:
        self._service = service
        self._settings = settings
        self._apps = apps
        self._trail = trail  # where the calls' audit entries go
        # A port asked for by name must be served; the default one may be another node's.
        self._required = (
            "delayjob_grpc_port" in settings.model_fields_set if required is None else required
        )
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        settings = self._settings
        if not settings.delayjob_grpc_port:
            return
        import grpc

        from cronwheel.api.dialects.delayjob_grpc_service import JobServicer
        from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc

        # Never share the port with another process (gRPC's default on Linux): a client of
        # this node must not reach some other server's jobs.
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_JobServicer_to_server(  # type: ignore[no-untyped-call]
            JobServicer(self._service, settings, self._apps, self._trail), server
        )
        address = bind_address(settings.delayjob_grpc_host, settings.delayjob_grpc_port)
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError:
            if self._required:
                raise
            # The default port, taken (say, a second node on this host): the node still runs.
            log.warning("delay.job.Job gRPC API not started: %s is in use; "
                        "set CRONWHEEL_DELAYJOB_GRPC_PORT (0 turns it off)", address)
            return
        await server.start()
        self._server = server
        log.info("delay.job.Job gRPC API on %s", address)

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
