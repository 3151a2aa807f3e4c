"""How the CLI shows instants: with milliseconds where seconds would mislead."""

from __future__ import annotations

from rich.console import Console

from cronwheel.cli import render

RUN = {"id": "r1", "kind": "scheduled", "state": "succeeded", "attempts": 1,
       "namespace": "default", "key": "k", "job_id": "j",
       "scheduled_at": "2026-11-21T18:00:00Z", "fired_at": "2026-11-21T17:59:59.900000Z",
       "started_at": "2026-11-21T18:00:00.002000Z", "finished_at": "2026-11-21T18:00:00.050000Z",
       "node": "n", "last_error": None, "attempt_log": []}


def _text(renderable: object) -> str:
    console = Console(width=200, record=True)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def test_a_fire_recorded_ahead_of_its_instant_does_not_read_as_a_second_early() -> None:
    table = _text(render.runs_table([RUN]))
    assert "2026-11-21 18:00:00.000Z" in table and "2026-11-21 17:59:59.900Z" in table
    assert "2026-11-21 18:00:00.002Z" in table
    detail = _text(render.run_detail(RUN))
    assert "recorded 100ms ahead; delivery waits for the instant" in detail


def test_whole_seconds_stay_short() -> None:
    whole = RUN | {"fired_at": "2026-11-21T18:00:00Z", "started_at": None, "finished_at": None}
    table = _text(render.runs_table([whole]))
    assert "2026-11-21 18:00:00Z" in table and ".000Z" not in table
    assert render.timestamp("2026-11-21T18:00:00.123456Z", precise=True) == (
        "2026-11-21 18:00:00.123Z")
