"""Mounting the console on the API's app: `/` leads to `/ui`, static files come from the
package, and a sampler keeps the dashboard's curves while the app runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from cronwheel.api.app import create_app as create_api_app
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from cronwheel.ui import apps, audit, jobs, login, overview, runs
from cronwheel.ui.access import AppAccess
from cronwheel.ui.session import Access, OpenAccess, Sessions
from cronwheel.ui.trends import Trends


def install(app: FastAPI, access: Access | None = None, trends: Trends | None = None) -> None:
    """Add the console to an app made by `cronwheel.api.app.create_app`."""
    app.state.console_access = access or OpenAccess()
    app.state.console_sessions = Sessions()
    sampler = trends or Trends()
    app.state.console_trends = sampler
    app.mount("/ui/static", StaticFiles(packages=[("cronwheel.ui", "static")]),
              name="console-static")
    for module in (login, overview, jobs, runs, apps, audit):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui", 307)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        async with inner(running):
            task = asyncio.create_task(sampler.run(), name="console-trends")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan


def create_app(settings: Settings | None = None, node: Node | None = None,
               job_types: SpecParsers | None = None, access: Access | None = None) -> FastAPI:
    """The API's app with the console on it: what `cronwheel serve` runs. The console logs in
    with the node's tokens (`AppAccess`) unless another seam is given."""
    app = create_api_app(settings, node, job_types)
    install(app, access or AppAccess(app.state.node.apps))
    return app
