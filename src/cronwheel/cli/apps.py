"""`cronwheel apps` and `cronwheel tokens`: tenants and their credentials, over the API (admins)."""

from __future__ import annotations

from typing import Annotated

import typer

from cronwheel.cli import render
from cronwheel.cli.common import AsJson, Server, Token, connect
from cronwheel.client import DEFAULT_SERVER
from cronwheel.client.calls import JsonObject

apps_app = typer.Typer(help="Apps (tenants) and the namespaces they own.", no_args_is_help=True)
tokens_app = typer.Typer(help="API and worker tokens of an app.", no_args_is_help=True)
AppName = Annotated[str, typer.Argument(metavar="APP", help="an app's name")]


@apps_app.command("create")
def create_app(
    name: AppName,
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", help="a namespace it owns, or a prefix ending in '*'; "
                                  "repeatable")] = None,
    grant: Annotated[list[str] | None, typer.Option(
        "--grant", metavar="TYPE", help="a code-running worker job type it may use (shell, "
                                        "python, sql); repeatable")] = None,
    note: Annotated[str, typer.Option(help="what the app is for")] = "",
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create an app owning some namespaces."""
    body: JsonObject = {"name": name, "namespaces": namespace or [], "note": note}
    if grant:
        body["grants"] = {"job_types": grant}
    with connect(server, api_token) as client:
        app = client.create_app(body)
    if as_json:
        render.print_json(app)
    else:
        typer.echo(f"created app {app['name']}: {', '.join(app['namespaces']) or 'no namespaces'}")


@apps_app.command("ls")
def list_apps(
    server: Server = DEFAULT_SERVER, api_token: Token = None, as_json: AsJson = False
) -> None:
    """List apps with their namespaces and grants."""
    with connect(server, api_token) as client:
        found = client.apps()
    render.output(found, as_json, lambda f: render.simple_table(
        "apps", ("name", "namespaces", "grants", "note"),
        ((str(a["name"]), ", ".join(a["namespaces"]),
          ", ".join(a["grants"].get("job_types", [])) or "-", str(a["note"]))
         for a in f.get("apps", [])),
    ))


@apps_app.command("grant")
def grant(
    name: AppName,
    types: Annotated[list[str] | None, typer.Argument(
        metavar="TYPE...", help="the code-running job types it may use: shell, python, sql; "
                                "none to take every grant back")] = None,
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
) -> None:
    """Set the worker job types that run code which the app may create."""
    with connect(server, api_token) as client:
        app = client.update_app(name, {"grants": {"job_types": types or []}})
    granted = ", ".join(app["grants"]["job_types"]) or "nothing"
    typer.echo(f"app {app['name']} may create: {granted}")


LIMITS = ("max_jobs", "submits_per_second", "submit_burst", "max_batch", "max_payload_bytes",
          "min_interval_seconds", "fires_per_second")


@apps_app.command("limits")
def limits(
    name: AppName,
    values: Annotated[list[str] | None, typer.Argument(
        metavar="LIMIT=VALUE...", help=f"limits to override: {', '.join(LIMITS)}; "
                                       "LIMIT=default drops an override")] = None,
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show the app's limit overrides, or change some (docs/security.md, "Limits"): e.g.
    `cronwheel apps limits team submits_per_second=50 max_jobs=100000`."""
    with connect(server, api_token) as client:
        app = client.get_app(name)
        if values:
            app = client.update_app(name, {"limits": _changed_limits(app["limits"], values)})
    if as_json:
        render.print_json(app["limits"])
        return
    shown = app["limits"]
    typer.echo(f"app {app['name']}: " + (", ".join(f"{k}={v}" for k, v in shown.items())
                                          or "the server's defaults"))


def _changed_limits(current: JsonObject, values: list[str]) -> JsonObject:
    changed = dict(current)
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or key not in LIMITS:
            raise typer.BadParameter(f"{value!r}: expected LIMIT=VALUE, LIMIT one of "
                                     f"{', '.join(LIMITS)}", param_hint="LIMIT=VALUE")
        if text == "default":
            changed.pop(key, None)
            continue
        try:
            number = float(text)
            changed[key] = int(number) if number.is_integer() and "." not in text else number
        except ValueError:
            raise typer.BadParameter(f"{value!r}: the value is a number",
                                     param_hint="LIMIT=VALUE") from None
    return changed


@apps_app.command("rm")
def remove_app(name: AppName, server: Server = DEFAULT_SERVER, api_token: Token = None) -> None:
    """Remove an app with its namespace claims and tokens (its jobs stay, for admins)."""
    with connect(server, api_token) as client:
        client.remove_app(name)
    typer.echo(f"removed app {name}")


@tokens_app.command("create")
def create_token(
    app: AppName,
    role: Annotated[str, typer.Option(help="admin, operator, viewer or worker")],
    group: Annotated[list[str] | None, typer.Option(
        "--group", metavar="GROUP", help="worker tokens: a worker group it serves "
                                         "(a trailing '*' for a prefix); repeatable")] = None,
    label: Annotated[str, typer.Option(help="what the token is for")] = "",
    expires: Annotated[str | None, typer.Option(
        metavar="INSTANT", help="ISO 8601 instant after which it is refused")] = None,
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Make a token. It is printed once, on stdout; the server keeps only its hash."""
    body: JsonObject = {"role": role, "groups": group or [], "label": label}
    if expires is not None:
        body["expires_at"] = expires
    with connect(server, api_token) as client:
        made = client.create_token(app, body)
    if as_json:
        render.print_json(made)
        return
    typer.echo(made["token"])
    typer.echo(f"token {made['prefix']} ({made['role']} of {made['app']}): shown once, "
               "keep it now", err=True)


@tokens_app.command("ls")
def list_tokens(
    app: AppName, server: Server = DEFAULT_SERVER, api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List an app's tokens by prefix (never the tokens themselves)."""
    with connect(server, api_token) as client:
        found = client.tokens(app)
    render.output(found, as_json, lambda f: render.simple_table(
        f"tokens of {app}", ("prefix", "role", "groups", "label", "created", "expires", "live"),
        ((str(t["prefix"]), str(t["role"]), ",".join(t["groups"]) or "-", str(t["label"]),
          render.timestamp(t["created_at"]), render.timestamp(t["expires_at"]),
          "revoked" if t["revoked_at"] else render.yes_no(t["live"]))
         for t in f.get("tokens", [])),
    ))


@tokens_app.command("revoke")
def revoke_token(
    app: AppName,
    token: Annotated[str, typer.Argument(metavar="TOKEN_ID",
                                         help="the token's id or prefix (cw_<id>)")],
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
) -> None:
    """Revoke a token: refused from the next request on."""
    with connect(server, api_token) as client:
        revoked = client.revoke_token(app, token)
    typer.echo(f"revoked token {revoked['prefix']} of {app}")
