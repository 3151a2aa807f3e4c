"""`cronwheel audit`: the audit trail, newest first (admins)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cronwheel.cli import render
from cronwheel.cli.common import AsJson, Server, Token, connect, plain
from cronwheel.client import DEFAULT_SERVER
from cronwheel.client.calls import JsonObject

Filter = Annotated[str | None, typer.Option()]


def audit(
    app: Annotated[str | None, typer.Option(help="only this app's changes")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    action: Annotated[str | None, typer.Option(
        help="create_job, pause_job, revoke_token, delayjob.submit_job...")] = None,
    outcome: Annotated[str | None, typer.Option(
        help="ok, no_change, unauthenticated, forbidden, not_found, conflict, invalid, "
             "too_large, rate_limited, error")] = None,
    token_prefix: Annotated[str | None, typer.Option(
        "--token-prefix", help="only changes made with this token (cw_xxxxxxxx)")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 instant, inclusive")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 instant, exclusive")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="entries per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page: the cursor printed "
                                                    "under the last one")] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Who changed what, when, from where, and how it ended, refusals included."""
    with connect(server, token) as client:
        page = plain(client.audit(app, namespace, action, outcome, token_prefix, since, until,
                                  limit, cursor))
    render.output(page, as_json, audit_table)


def audit_table(page: JsonObject) -> Table:
    table = render.new_table("audit trail")
    for column in ("at", "app", "token", "from", "action", "namespace", "target", "outcome"):
        table.add_column(column, no_wrap=column != "target")
    for entry in page.get("entries", []):
        outcome = str(entry["outcome"])
        style = "green" if outcome == "ok" else "dim" if outcome == "no_change" else "red"
        who = entry["app"] or "-"
        if entry.get("user"):
            who = f"{who} ({entry['user']})"
        table.add_row(render.timestamp(entry["at"], precise=True), who,
                      entry["token_prefix"] or "-", entry["address"] or "-", entry["action"],
                      entry["namespace"] or "-", entry["target"] or "-",
                      Text(f"{outcome} {entry['status']}", style=style))
    if page.get("next_cursor"):
        table.caption = f"more: --cursor {page['next_cursor']}"
    return table
