"""Commands for runs on workers: read a log, kill a run, list workers and what runs on a host."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from cronwheel.cli import render
from cronwheel.cli.common import AsJson, Key, Namespace, Server, Token, connect, plain
from cronwheel.cli.jobs import jobs_app, runs_app
from cronwheel.client import DEFAULT_SERVER, Client

workers_app = typer.Typer(help="Worker processes and what they run.", no_args_is_help=True)
RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="a run id from `jobs runs`")]
PAGE = 1_048_576
FOLLOW_POLL_S = 0.5


@runs_app.command("log")
def log(
    run_id: RunId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    stream: Annotated[str, typer.Option(help="log or result")] = "log",
    offset: Annotated[int, typer.Option(min=0, help="byte offset to start from")] = 0,
    attempt: Annotated[int | None, typer.Option(min=1, help="default: the latest")] = None,
    worker: Annotated[str | None, typer.Option(help="one worker of a broadcast")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="keep printing until the run ends")] = False,
) -> None:
    """Print a run's output, page by page (a 100 MB log never sits in memory); with
    --follow, as it comes (server-sent events) until the run's task ends."""
    with connect(server, token) as client:
        if follow:
            _follow(client, run_id, offset, stream, attempt, worker)
            return
        while True:
            page = client.run_log(run_id, offset, PAGE, stream, attempt, worker)
            sys.stdout.write(page.text)
            sys.stdout.flush()
            offset = page.next_offset
            if page.end or offset >= page.size:
                return
            attempt, worker = page.attempt, page.worker  # stay on the task we started on


def _follow(client: Client, run_id: str, offset: int, stream: str, attempt: int | None,
            worker: str | None) -> None:
    """Print `output` events until `end`; a dropped stream is opened again where it left."""
    while True:
        for event in client.follow_log(run_id, offset, stream, attempt, worker):
            if event.name == "end":
                return
            sys.stdout.write(str(event.data.get("text", "")))
            sys.stdout.flush()
            offset = int(event.data.get("next_offset", offset))
            attempt = int(event.data.get("attempt", attempt or 1))
            worker = str(event.data.get("worker", worker or ""))
        time.sleep(FOLLOW_POLL_S)


@runs_app.command("kill")
def kill(run_id: RunId, server: Server = DEFAULT_SERVER, token: Token = None) -> None:
    """Stop a run: on workers its process tree is killed; it is not retried."""
    with connect(server, token) as client:
        answer = client.kill_run(run_id)
    state = "being killed" if answer.killing else answer.state
    typer.echo(f"run {run_id}: {state}")


@workers_app.command("ls")
def list_workers(
    include_stopped: Annotated[bool, typer.Option(
        "--include-stopped", help="also workers that stopped")] = False,
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: AsJson = False,
) -> None:
    """List workers: groups, the job types they accept, load, liveness."""
    with connect(server, token) as client:
        found = plain(client.workers(include_stopped))
    render.output(found, as_json, lambda f: render.simple_table(
        "workers", ("name", "host", "groups", "types", "busy", "capacity", "online",
                    "heartbeat"),
        ((str(w.get("name")), str(w.get("host")), ",".join(w.get("groups", [])),
          ",".join(w.get("types", [])), str(w.get("busy")), str(w.get("capacity")),
          render.yes_no(w.get("online")),
          render.timestamp(w.get("heartbeat_at")))
         for w in f.get("workers", [])),
    ))


@workers_app.command("runs")
def runs_on_host(
    host: Annotated[str, typer.Argument(help="a host address or a worker name")],
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """What is running on a host now (ask before restarting it)."""
    with connect(server, token) as client:
        found = plain(client.runs_on_host(host))
    render.output(found, as_json, lambda f: render.simple_table(
        f"runs in progress on {host}", ("run", "job", "worker", "attempt", "started"),
        (_host_run_row(r) for r in f.get("runs", [])),
    ))


def _host_run_row(run: dict[str, Any]) -> tuple[str, ...]:
    task = run.get("task", {})
    return (str(run.get("id")), str(run.get("key")), str(task.get("worker")),
            str(task.get("attempt")), render.timestamp(task.get("started_at")))


def _switches(pairs: list[str]) -> dict[str, bool]:
    """NAME=on|off pairs as the API's {name: enabled}."""
    found: dict[str, bool] = {}
    for pair in pairs:
        name, sep, value = pair.rpartition("=")
        if not sep or not name or value.lower() not in ("on", "off"):
            raise typer.BadParameter(f"{pair!r}: expected NAME=on or NAME=off",
                                     param_hint="SWITCH")
        found[name] = value.lower() == "on"
    return found


Switches = Annotated[list[str], typer.Argument(
    metavar="NAME=on|off...", help="workers to take off line (off) or back (on)")]


@workers_app.command("switch")
def switch(
    switches: Switches, server: Server = DEFAULT_SERVER, token: Token = None,
) -> None:
    """Take workers off line or back for every job, e.g. before restarting a host. Refused
    when a group would be left with no worker."""
    with connect(server, token) as client:
        client.switch_workers(_switches(switches))
    typer.echo(", ".join(f"{name} {'on' if on else 'off'}"
                         for name, on in _switches(switches).items()))


@jobs_app.command("workers")
def job_workers(
    key: Key,
    switches: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME=on|off]...", help="switch these workers for this job")] = None,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """The workers that may run a worker job, and switch them on or off for it."""
    with connect(server, token) as client:
        if switches:
            found = plain(client.switch_job_workers(key, _switches(switches), namespace))
        else:
            found = plain(client.job_workers(key, namespace))
    render.output(found, as_json, lambda f: render.simple_table(
        f"workers of {namespace}/{key}", ("name", "host", "online", "busy", "enabled"),
        ((str(w.get("name")), str(w.get("host")), render.yes_no(w.get("online")),
          str(w.get("busy")), render.yes_no(w.get("enabled")))
         for w in f.get("workers", [])),
    ))


@jobs_app.command("alerts")
def job_alerts(
    key: Key,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """A job's failed runs in a row and the alerts sent for it."""
    with connect(server, token) as client:
        found = plain(client.job_alerts(key, namespace))
    render.output(found, as_json, lambda f: render.simple_table(
        f"alerts of {namespace}/{key} ({f.get('failures')} failed runs in a row)",
        ("run", "failures", "state", "tries", "sent", "error"),
        ((str(a.get("run_id")), str(a.get("failures")), str(a.get("state")),
          str(a.get("tries")), render.timestamp(a.get("sent_at")), str(a.get("error") or "-"))
         for a in f.get("alerts", [])),
    ))
