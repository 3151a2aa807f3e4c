"""`cronwheel jobs schedules / schedule-add / schedule-edit / schedule-rm / rerun` end to end:
the console script against a real node."""

from __future__ import annotations

from tests.e2e.test_cli import cronwheel
from tests.servers import RunningServer

URL = "http://127.0.0.1:9/callback"


async def test_expressions_by_id_and_a_rerun(server: RunningServer) -> None:
    base = server.base_url
    added = await cronwheel("jobs", "add", "etl", "--cron", "0 3 * * *", "--url", URL,
                            server=base)
    assert added.code == 0, added.err

    more = await cronwheel("jobs", "schedule-add", "etl", "--id", "hourly", "--every", "1h",
                           server=base)
    assert more.code == 0, more.err
    assert "added expression hourly to default/etl" in more.err + more.out

    listed = await cronwheel("jobs", "schedules", "etl", "--json", server=base)
    assert [(i["id"], i["kind"]) for i in listed.json()["schedules"]] == [
        ("1", "cron"), ("hourly", "rate")]
    table = await cronwheel("jobs", "schedules", "etl", server=base)
    row = next(line for line in table.out.splitlines() if "hourly" in line)
    assert "rate" in row and "every=1h" in row

    shown = await cronwheel("jobs", "show", "etl", server=base)
    assert "[1] cron 0 3 * * * UTC; [hourly] every 1h" in shown.out, shown.out

    edited = await cronwheel("jobs", "schedule-edit", "etl", "1", "--cron", "0 4 * * *",
                             "--json", server=base)
    assert edited.code == 0, edited.err
    assert edited.json()["schedule"]["items"][0]["expr"] == "0 4 * * *"

    removed = await cronwheel("jobs", "schedule-rm", "etl", "hourly", server=base)
    assert removed.code == 0, removed.err
    last = await cronwheel("jobs", "schedule-rm", "etl", "1", server=base)
    assert last.code == 1 and "schedules" in last.err

    rerun = await cronwheel("jobs", "rerun", "etl", "--from", "2026-01-01T00:00:00Z",
                            "--to", "2026-01-02T23:59:59Z", server=base)
    assert rerun.code == 0, rerun.err
    assert "2 runs created, 0 rerun, 0 already in flight" in rerun.out
    unbounded = await cronwheel("jobs", "rerun", "etl", "--from", "2026-01-01T00:00:00Z",
                                "--to", "2999-01-01T00:00:00Z", server=base)
    assert unbounded.code == 1 and "to" in unbounded.err
