"""The ASGI application: one node, every API mounted on it."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cronwheel import __version__
from cronwheel.api import (
    apps,
    audit,
    auth,
    cluster,
    docs,
    errors,
    native,
    preview,
    schedules,
    statuses,
    workers,
)
from cronwheel.api.auditing import AuditMiddleware, AuditTrail
from cronwheel.api.dialects import delayjob, dispatchserver, kubernetes, qschedule, sentinel
from cronwheel.api.dialects.delayjob_grpc import DelayJobGrpcServer
from cronwheel.api.hardening import Hardening, HostRule
from cronwheel.api.lanes import ReadLanes
from cronwheel.api.responses import Json
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.jobtypes.registry import load_job_types
from cronwheel.metrics import MergedPages
from cronwheel.runtime import Node
from cronwheel.settings import Settings


def create_app(settings: Settings | None = None, node: Node | None = None,
               job_types: SpecParsers | None = None) -> FastAPI:
    """The app over `node`; worker targets are checked against `job_types`, by default the
    built-in types and the installed plugins, discovered here, once."""
    node = node or Node(settings or Settings())
    trail = AuditTrail(node.store.audit, node.clock)
    delayjob_grpc = DelayJobGrpcServer(node.service, node.settings, node.apps, trail=trail)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        await delayjob_grpc.start()
        # Everything alive now (modules, the app, pools) lives as long as the process: keep it
        # out of the collector's full passes, which otherwise stall the loop for 100+ ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await delayjob_grpc.stop()
            await trail.close()
            await node.stop()

    app = FastAPI(
        title="cronwheel",
        version=__version__,
        description="Durable timers, schedules and callbacks.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by docs.install: no CDN
        redoc_url=None,
    )
    app.state.node = node
    app.state.delayjob_grpc = delayjob_grpc
    app.state.audit_trail = trail
    app.state.job_types = load_job_types() if job_types is None else job_types
    errors.install(app)
    config = node.settings
    # The last middleware added runs first: Hardening refuses a wrong Host, a cross-site write
    # or a declared oversized body before AuthMiddleware looks up any token (docs/security.md).
    auth.install(app, node.apps, config.metrics_public)
    hosts = HostRule.from_settings(config.allowed_hosts, config.host, config.advertised_address)
    app.add_middleware(Hardening, max_body=config.max_body_bytes, hosts=hosts)
    # Its entry records refusals by any layer inside, Hardening's and auth's too.
    app.add_middleware(AuditMiddleware, trail=trail, routes=lambda: app.router.routes)
    # Outermost: a read waiting for its turn costs nothing yet (api/lanes.py).
    app.add_middleware(ReadLanes, slots=config.read_concurrency)
    statuses.document(app, config.metrics_public)
    docs.install(app)
    app.include_router(workers.router)  # first: its /v1/jobs/{key}/workers beats /jobs/{key}
    app.include_router(schedules.router)  # before native: /jobs/{key}/schedules beats /jobs/{key}
    app.include_router(native.router)
    app.include_router(preview.router)
    app.include_router(cluster.router)
    app.include_router(apps.router)
    app.include_router(audit.router)
    app.include_router(delayjob.router)
    app.include_router(dispatchserver.router)
    app.include_router(qschedule.router)
    app.include_router(kubernetes.router)
    app.include_router(sentinel.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        """Ready when the database answers: a load balancer stops sending to a cut-off node."""
        body = {"status": "ok", "node": node.settings.node_name, "version": __version__}
        try:
            await node.store.ping()
        except Exception as exc:
            body |= {"status": "unavailable", "error": f"database: {type(exc).__name__}"}
            return Json(body, 503)
        return Json(body)

    merged = MergedPages()

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        if node.engine_process is None:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
        # the firing is counted in the engine process
        engine_page = await node.engine_process.channel.ask_metrics()
        return Response(merged.page(engine_page), media_type=CONTENT_TYPE_LATEST)

    return app
