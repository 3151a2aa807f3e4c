"""The guard companion starts quietly: `cronwheel worker` must not print a RuntimeWarning
about cronwheel.worker.guard being in sys.modules before it runs."""

from __future__ import annotations

import pytest

from cronwheel.worker.guard import Guard


async def test_the_guard_starts_and_stops_without_a_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    guard = Guard()
    await guard.start()
    guard.watch(999_999_999)  # no such group: nothing to kill
    guard.forget(999_999_999)
    await guard.close()
    _out, err = capfd.readouterr()
    assert "Warning" not in err and "Traceback" not in err, err
