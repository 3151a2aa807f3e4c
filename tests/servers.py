"""A real cronwheel node served by uvicorn on a loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from cronwheel.api.app import create_app
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from tests.stores import sqlite_file
from tests.support import TEST_ADMIN_TOKEN, free_port


@dataclass
class RunningServer:
    node: Node
    base_url: str
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def running_server(
    database: Path | str, run_engine: bool = True,
    make_app: Callable[[Node], FastAPI] | None = None, **settings: Any
) -> AsyncIterator[RunningServer]:
    """`make_app` builds the ASGI app over the node (the API's app by default). A SQLite file
    that does not exist yet starts as a copy of one already migrated."""
    if isinstance(database, Path):
        sqlite_file(database.parent, database.name, keep=True)
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    port = settings.pop("port", None) or free_port()
    settings.setdefault("delayjob_grpc_port", 0)  # port 1990 is for a real server
    clusters = settings.pop("clusters", None)  # Kubernetes clusters a test stands in for
    config = Settings(database_url=url, port=port, **settings)
    # an engine process only where the test asks for one (serve's default layout)
    node = Node(config, run_engine=run_engine, clusters=clusters,
                engine_child=bool(settings.get("engine_process")))
    app = create_app(node=node) if make_app is None else make_app(node)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        auth = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=auth) as client:
            yield RunningServer(node, base, client)
    finally:
        server.should_exit = True
        await task
