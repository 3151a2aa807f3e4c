"""Shared helpers for tests: free ports, waiting for a condition, and the rule for services
that are not reachable."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import time
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

REQUIRE_SERVICES = os.environ.get("CRONWHEEL_REQUIRE_SERVICES") == "1"


def service_missing(name: str, reason: str) -> NoReturn:
    """Skip locally; fail in CI (CRONWHEEL_REQUIRE_SERVICES=1), where every service must run."""
    message = f"{name} is not available: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (CRONWHEEL_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def wait_until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> Any:
    """Poll `check` (plain or async) until it returns something truthy, and return that.

    For waiting on something to happen instead of sleeping a fixed time: returns as soon as
    it has happened, and fails with the last value seen when it does not within `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s; last seen: {value!r}")
        await asyncio.sleep(every)


# The admin token every test server is provisioned with (CRONWHEEL_ADMIN_TOKEN, set for the
# whole session by tests/conftest.py) and every test client sends. A test value only.
TEST_ADMIN_TOKEN = "cw_testadm1_" + "T3st-only-admin-secret-not-for-real-use-0001"
ADMIN_HEADERS = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}
