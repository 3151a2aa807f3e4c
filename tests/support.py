"""Shared helpers for tests: free ports, and the rule for services that are not reachable."""

from __future__ import annotations

import os
import socket
from typing import NoReturn

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


# The admin token every test server is provisioned with (CRONWHEEL_ADMIN_TOKEN, set for the
# whole session by tests/conftest.py) and every test client sends. A test value only.
TEST_ADMIN_TOKEN = "cw_testadm1_" + "T3st-only-admin-secret-not-for-real-use-0001"
ADMIN_HEADERS = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}
