"""Commands for runs on workers: read a log, kill a run, list workers and what runs on a host."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from cronwheel.cli import render
from cronwheel.cli.client import DEFAULT_SERVER
from cronwheel.cli.jobs import AsJson, Server, _connect, runs_app

workers_app = typer.Typer(help="Worker processes and what they run.", no_args_is_help=True)
RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="a run id from `jobs runs`")]
PAGE = 1_048_576
FOLLOW_POLL_S = 0.5


@runs_app.command("log")
def log(
    run_id: RunId,
    server: Server = DEFAULT_SERVER,
    stream: Annotated[str, typer.Option(help="log or result")] = "log",
    offset: Annotated[int, typer.Option(min=0, help="byte offset to start from")] = 0,
    attempt: Annotated[int | None, typer.Option(min=1, help="default: the latest")] = None,
    worker: Annotated[str | None, typer.Option(help="one worker of a broadcast")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="keep printing until the run ends")] = False,
) -> None:
    """Print a run's output, page by page (a 100 MB log never sits in memory)."""
    params: dict[str, str | int] = {"stream": stream, "limit": PAGE}
    if attempt is not None:
        params["attempt"] = attempt
    if worker is not None:
        params["worker"] = worker
    with _connect(server) as client:
        while True:
            page = client.run_log(run_id, params | {"offset": offset})
            sys.stdout.write(str(page.get("text", "")))
            sys.stdout.flush()
            offset = int(page.get("next_offset", offset))
            if page.get("end") or (not follow and offset >= int(page.get("size", 0))):
                return
            if offset >= int(page.get("size", 0)):
                time.sleep(FOLLOW_POLL_S)
            params["attempt"] = int(page.get("attempt", 1))  # stay on the task we started on
            params["worker"] = str(page.get("worker", ""))


@runs_app.command("kill")
def kill(run_id: RunId, server: Server = DEFAULT_SERVER) -> None:
    """Stop a run: on workers its process tree is killed; it is not retried."""
    with _connect(server) as client:
        answer = client.kill_run(run_id)
    state = "being killed" if answer.get("killing") else str(answer.get("state"))
    typer.echo(f"run {run_id}: {state}")


@workers_app.command("ls")
def list_workers(server: Server = DEFAULT_SERVER, as_json: AsJson = False) -> None:
    """List workers: groups, load, liveness."""
    with _connect(server) as client:
        found = client.workers()
    render.output(found, as_json, lambda f: render.simple_table(
        "workers", ("name", "host", "groups", "busy", "capacity", "online", "heartbeat"),
        ((str(w.get("name")), str(w.get("host")), ",".join(w.get("groups", [])),
          str(w.get("busy")), str(w.get("capacity")), render.yes_no(w.get("online")),
          render.timestamp(w.get("heartbeat_at")))
         for w in f.get("workers", [])),
    ))


@workers_app.command("runs")
def runs_on_host(
    host: Annotated[str, typer.Argument(help="a host address or a worker name")],
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
) -> None:
    """What is running on a host now (ask before restarting it)."""
    with _connect(server) as client:
        found = client.runs_on_host(host)
    render.output(found, as_json, lambda f: render.simple_table(
        f"runs in progress on {host}", ("run", "job", "worker", "attempt", "started"),
        (_host_run_row(r) for r in f.get("runs", [])),
    ))


def _host_run_row(run: dict[str, Any]) -> tuple[str, ...]:
    task = run.get("task", {})
    return (str(run.get("id")), str(run.get("key")), str(task.get("worker")),
            str(task.get("attempt")), render.timestamp(task.get("started_at")))
