"""`cronwheel apps` and `cronwheel tokens`: tenants and their credentials, over the API (admins).

Also the dialects' app data: `apps admit|admitted|unadmit` (network rules) and `apps qschedule`.
"""

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
                                        "python, sql, a command type); repeatable")] = None,
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
        metavar="TYPE...", help="the code-running job types it may use: shell, python, sql, "
                                "command types such as hive (each by name: no wildcard); "
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


@apps_app.command("sentinel-key")
def sentinel_key(
    name: AppName,
    key: Annotated[str | None, typer.Option(
        "--key", help="the appKey to set (16-128 printable characters); a random one when "
                      "absent")] = None,
    remove: Annotated[bool, typer.Option(
        "--remove", help="take the app's appKey away: its Sentinel requests are refused")] = False,
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Set the app's Sentinel appKey (printed once; stored sealed under the server key)."""
    with connect(server, api_token) as client:
        if remove:
            client.remove_sentinel_key(name)
            typer.echo(f"app {name} has no Sentinel appKey now")
            return
        made = client.set_sentinel_key(name, key)
    if as_json:
        render.print_json(made)
    else:
        typer.echo(f"Sentinel appKey of app {name} (shown once; clients send appName={name} "
                   f"and appToken=<unix seconds>+md5(appKey+<unix seconds>)):")
        typer.echo(str(made["app_key"]))


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
    _shown_once(made, as_json, f"token {made['prefix']} ({made['role']} of {made['app']}):")


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


# -- the dialects' app data: admission rules and qschedule applications --------------------

qschedule_app = typer.Typer(help="qschedule applications of an app (their Q-Server-Tokens).",
                            no_args_is_help=True)
apps_app.add_typer(qschedule_app, name="qschedule")


@apps_app.command("admit")
def admit(
    name: AppName,
    dialect: Annotated[str, typer.Argument(
        metavar="DIALECT", help="delayjob, delayjob-grpc, dispatchserver or kubernetes")],
    network: Annotated[str, typer.Argument(metavar="CIDR",
                                           help="the clients' network, such as 10.0.0.0/8")],
    namespace: Annotated[str, typer.Option(
        "--namespace", "-n", help="where the dialect's jobs go: a namespace the app owns "
                                  "(dispatchserver: a namespace prefix it owns)")],
    token: Annotated[bool, typer.Option(
        "--token", help="clients must also send 'Authorization: Bearer <operator token of "
                        "the app>'")] = False,
    note: Annotated[str, typer.Option(help="who these clients are")] = "",
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
) -> None:
    """Admit a dialect's clients of a network as the app (longest prefix wins)."""
    body: JsonObject = {"dialect": dialect, "network": network, "namespace": namespace,
                        "token": token, "note": note}
    with connect(server, api_token) as client:
        rule = client.add_admission_rule(name, body)
    needs = " with a token" if rule["token"] else ""
    typer.echo(f"{rule['dialect']} clients of {rule['network']}{needs} are app {rule['app']}, "
               f"writing {rule['namespace']}")


@apps_app.command("admitted")
def admitted(
    name: AppName, server: Server = DEFAULT_SERVER, api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List the networks whose dialect clients are the app."""
    with connect(server, api_token) as client:
        found = client.admission_rules(name)
    render.output(found, as_json, lambda f: render.simple_table(
        f"admission rules of {name}", ("dialect", "network", "namespace", "token", "note"),
        ((str(r["dialect"]), str(r["network"]), str(r["namespace"]),
          render.yes_no(r["token"]), str(r["note"])) for r in f.get("rules", [])),
    ))


@apps_app.command("unadmit")
def unadmit(
    name: AppName,
    dialect: Annotated[str, typer.Argument(metavar="DIALECT")],
    network: Annotated[str, typer.Argument(metavar="CIDR")],
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
) -> None:
    """Remove an admission rule: its clients are judged by the remaining rules."""
    with connect(server, api_token) as client:
        client.remove_admission_rule(name, dialect, network)
    typer.echo(f"{dialect} clients of {network} are no longer app {name}")


@qschedule_app.command("add")
def add_qschedule(
    name: AppName,
    qid: Annotated[int, typer.Option("--id", help="the qschedule app id its clients know")],
    qname: Annotated[str, typer.Option(
        "--name", help="the qschedule app name: the namespace its jobs are in")],
    token: Annotated[str | None, typer.Option(
        help="its existing Q-Server-Token; a new random one when absent")] = None,
    note: Annotated[str, typer.Option(help="what it is")] = "",
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Add a qschedule application; its Q-Server-Token is printed once, on stdout."""
    body: JsonObject = {"id": qid, "name": qname, "note": note}
    if token is not None:
        body["token"] = token
    with connect(server, api_token) as client:
        made = client.add_qschedule_app(name, body)
    _shown_once(made, as_json,
                f"qschedule app {made['id']} ({made['name']}) of {made['app']}: its "
                "Q-Server-Token is")


@qschedule_app.command("ls")
def list_qschedule(
    name: AppName, server: Server = DEFAULT_SERVER, api_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List the app's qschedule applications (never their tokens)."""
    with connect(server, api_token) as client:
        found = client.qschedule_apps(name)
    render.output(found, as_json, lambda f: render.simple_table(
        f"qschedule apps of {name}", ("id", "name", "created", "note"),
        ((str(q["id"]), str(q["name"]), render.timestamp(q["created_at"]), str(q["note"]))
         for q in f.get("qschedule", [])),
    ))


@qschedule_app.command("rm")
def remove_qschedule(
    name: AppName,
    qid: Annotated[int, typer.Argument(metavar="ID")],
    server: Server = DEFAULT_SERVER,
    api_token: Token = None,
) -> None:
    """Remove a qschedule application: its token is refused from the next request on."""
    with connect(server, api_token) as client:
        client.remove_qschedule_app(name, qid)
    typer.echo(f"removed qschedule app {qid} of {name}")


def _shown_once(made: JsonObject, as_json: bool, what: str) -> None:
    """A new secret (`made["token"]`) alone on stdout, so scripts can capture it, and on
    stderr that this is the only time the server shows it."""
    if as_json:
        render.print_json(made)
        return
    typer.echo(made["token"])
    typer.echo(f"{what} shown once, keep it now", err=True)
