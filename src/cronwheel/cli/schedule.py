"""`cronwheel schedule next`: preview an expression locally, no server needed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cronwheel.cli import render

schedule_app = typer.Typer(help="Work with schedule expressions.", no_args_is_help=True)


@schedule_app.command("next")
def next_times(
    expr: Annotated[str, typer.Argument(help="cron (5, 6 or 7 fields), 'every 5m', or R5/...")],
    tz: Annotated[str | None, typer.Option(help="IANA time zone for cron, e.g. Asia/Shanghai")]
    = None,
    count: Annotated[int, typer.Option("-n", "--count", min=1, max=100)] = 10,
    after: Annotated[str | None, typer.Option(help="ISO 8601 instant; default now")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the next fire times of EXPR and say in words what it means."""
    from cronwheel.clock import SystemClock
    from cronwheel.domain.errors import InvalidField
    from cronwheel.domain.preview import preview
    from cronwheel.domain.time import parse_instant

    try:
        start = SystemClock().now() if after is None else parse_instant(after, "after")
        found = preview(expr, tz, None, start, count)
    except InvalidField as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    if not found.next:
        typer.echo(f"{found.kind}: {found.description}: no fire times after that instant")
        return
    if as_json:
        render.print_json({"kind": found.kind, "description": found.description,
                           "next": found.next})
        return
    table = Table(title=f"{found.kind}: {found.description}")
    table.add_column("#", justify="right")
    table.add_column("UTC")
    table.add_column("local" if tz is None else tz)
    for index, iso in enumerate(found.next, 1):
        table.add_row(str(index), iso, render.timestamp(iso) if tz is None else _in(iso, tz))
    render.show(table)


def _in(iso: str, tz: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(iso).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")
