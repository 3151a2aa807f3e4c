"""Fixtures of the executor tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children import tests.worker.helpers whatever directory pytest was started from."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
