"""`cronwheel jobs schedules | schedule-add | schedule-edit | schedule-rm | rerun`: a job's time
expressions by id, and backfills."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cronwheel.cli import render
from cronwheel.cli.common import (
    AsJson,
    Key,
    Namespace,
    Server,
    Token,
    connect,
    plain,
    print_job,
)
from cronwheel.cli.jobspec import ScheduleOptions, build_schedule
from cronwheel.client import DEFAULT_SERVER
from cronwheel.client.calls import JsonObject

ScheduleId = Annotated[str, typer.Argument(metavar="ID", help="the expression's id")]
Cron = Annotated[str | None, typer.Option(metavar="EXPR", help="a cron expression")]
Tz = Annotated[str | None, typer.Option(help="IANA time zone for --cron")]
Every = Annotated[str | None, typer.Option(metavar="RATE", help="a rate: 5m, 'every 2h'")]
Iso = Annotated[str | None, typer.Option(metavar="R/START/DURATION",
                                         help="ISO 8601 repeating interval")]
At = Annotated[str | None, typer.Option(metavar="ISO", help="once at this instant")]
After = Annotated[str | None, typer.Option(metavar="DELAY",
                                           help="once after this delay (a one-shot offset)")]
Schedule = Annotated[str | None, typer.Option(metavar="JSON", help="any schedule as JSON")]


def _expression(opts: ScheduleOptions, schedule_id: str | None = None) -> JsonObject:
    body = build_schedule(opts) or {}  # never None: a schedule is required
    return body | ({"id": schedule_id} if schedule_id is not None else {})


def _items_table(found: JsonObject) -> Table:
    rows = []
    for item in found.get("schedules", []):
        detail = {k: v for k, v in item.items() if k not in ("id", "kind", "added_at")}
        rows.append((str(item.get("id")), str(item.get("kind")),
                     ", ".join(f"{k}={v}" for k, v in detail.items() if v is not None),
                     render.timestamp(item.get("added_at"))))
    return render.simple_table("time expressions", ("id", "kind", "expression", "added"), rows)


def list_schedules(
    key: Key, namespace: Namespace = "default", server: Server = DEFAULT_SERVER,
    token: Token = None, as_json: AsJson = False,
) -> None:
    """List a job's time expressions, each with its id (a single schedule is "1")."""
    with connect(server, token) as client:
        found = plain(client.job_schedules(key, namespace))
    render.output(found, as_json, _items_table)


def add_schedule(
    key: Key,
    schedule_id: Annotated[str | None, typer.Option("--id", help="its id (default: a number)")]
    = None,
    cron: Cron = None, tz: Tz = None, every: Every = None, iso: Iso = None, at: At = None,
    after: After = None, schedule: Schedule = None,
    namespace: Namespace = "default", server: Server = DEFAULT_SERVER, token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Add a time expression: the job fires at the union of its expressions' instants."""
    body = _expression(ScheduleOptions(at, after, False, cron, tz, every, iso, schedule),
                       schedule_id)
    with connect(server, token) as client:
        changed = client.add_schedule(key, body, namespace)
    print_job(plain(changed.job), as_json,
              f"added expression {changed.schedule.id} to {namespace}/{key}")


def edit_schedule(
    key: Key, schedule_id: ScheduleId,
    cron: Cron = None, tz: Tz = None, every: Every = None, iso: Iso = None, at: At = None,
    after: After = None, schedule: Schedule = None,
    namespace: Namespace = "default", server: Server = DEFAULT_SERVER, token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Replace one time expression; it counts from now."""
    body = _expression(ScheduleOptions(at, after, False, cron, tz, every, iso, schedule))
    with connect(server, token) as client:
        changed = client.edit_schedule(key, schedule_id, body, namespace)
    print_job(plain(changed.job), as_json, f"edited expression {schedule_id} of {namespace}/{key}")


def remove_schedule(
    key: Key, schedule_id: ScheduleId, namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: AsJson = False,
) -> None:
    """Remove one time expression (not the job's last one)."""
    with connect(server, token) as client:
        job = plain(client.remove_schedule(key, schedule_id, namespace))
    print_job(job, as_json, f"removed expression {schedule_id} from {namespace}/{key}")


def rerun(
    key: Key,
    start: Annotated[str, typer.Option("--from", metavar="ISO", help="first instant")],
    end: Annotated[str, typer.Option("--to", metavar="ISO", help="last instant, included")],
    downstream: Annotated[bool, typer.Option(
        "--downstream", help="rerun the dependent jobs' runs too")] = False,
    namespace: Namespace = "default", server: Server = DEFAULT_SERVER, token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Backfill: a run (or a new attempt of its run) for every planned instant in the range."""
    with connect(server, token) as client:
        done = plain(client.rerun_job(key, start, end, downstream, namespace))
    if as_json:
        render.print_json(done)
        return
    typer.echo(f"{namespace}/{key}: {done.get('created')} runs created, {done.get('rerun')} "
               f"rerun, {done.get('in_flight')} already in flight")
    if done.get("runs"):
        render.show(render.runs_table(done["runs"]))


def register(app: typer.Typer) -> None:
    app.command("schedules")(list_schedules)
    app.command("schedule-add")(add_schedule)
    app.command("schedule-edit")(edit_schedule)
    app.command("schedule-rm")(remove_schedule)
    app.command("rerun")(rerun)
