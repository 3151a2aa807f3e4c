"""`cronwheel jobs ...` and `cronwheel runs ...`: client commands that talk to a running node.

Exit codes: 0 done; 1 the server refused (its error printed to stderr); 2 the server could not
be reached, or the command line itself is wrong.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table

from cronwheel.cli import render
from cronwheel.cli.common import (
    AsJson,
    Key,
    Namespace,
    PayloadOption,
    Server,
    Token,
    connect,
    parse_json,
    plain,
    print_job,
    print_page,
)
from cronwheel.cli.jobspec import (
    PolicyOptions,
    ScheduleOptions,
    TargetOptions,
    apply_policies,
    build_schedule,
    build_target,
    load_job_file,
)
from cronwheel.client import DEFAULT_SERVER
from cronwheel.client.calls import JsonObject
from cronwheel.domain.jobs import ConcurrencyPolicy, MisfirePolicy

jobs_app = typer.Typer(help="Add, list, inspect, control and delete jobs on a running node.",
                       no_args_is_help=True)
runs_app = typer.Typer(help="Inspect runs (one firing of a job) and their attempts.",
                       no_args_is_help=True)


class State(StrEnum):
    active = "active"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"


# -- jobs add ------------------------------------------------------------------------------------

_S = "schedule"
_T = "target"
_P = "policies"


def _job_body(
    key: str | None, namespace: str | None, file: str | None, payload: str | None,
    schedule: ScheduleOptions, target: TargetOptions, policies: PolicyOptions,
) -> JsonObject:
    """The job to submit: the file's (when given), with every option given set over it."""
    body = load_job_file(file) if file is not None else {}
    if key is not None:
        body["key"] = key
    if "key" not in body:
        raise typer.BadParameter("give the job's KEY (or a key in the -f file)", param_hint="KEY")
    body["namespace"] = namespace or body.get("namespace") or "default"
    found = build_schedule(schedule, required="schedule" not in body)
    if found is not None:
        body["schedule"] = found
    made = build_target(target, required="target" not in body)
    if made is not None:
        body["target"] = made
    if payload is not None:
        body["payload"] = parse_json(payload, "--payload")
    apply_policies(body, policies)
    return body


@jobs_app.command("add")
def add(  # one option per field of a job: the options are the API
    key: Annotated[str | None, typer.Argument(
        metavar="KEY", help="the job's key, unique in its namespace")] = None,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", metavar="JOB.json",
        help="the job as JSON (POST /v1/jobs's body; - for stdin); options override it")]
    = None,
    at: Annotated[str | None, typer.Option(
        metavar="ISO", rich_help_panel=_S,
        help="fire once at this instant (2026-11-21T18:00:00Z)")] = None,
    after: Annotated[str | None, typer.Option(
        metavar="DELAY", rich_help_panel=_S,
        help="fire once after this delay: seconds, 30s, 5m, 1h30m or PT30S")] = None,
    countdown: Annotated[bool, typer.Option(
        "--countdown", rich_help_panel=_S,
        help="a pausable countdown: pausing keeps the time left")] = False,
    cron: Annotated[str | None, typer.Option(
        metavar="EXPR", rich_help_panel=_S,
        help="cron: Unix 5 fields or Quartz 6/7 ('0 30 9 ? * MON-FRI')")] = None,
    tz: Annotated[str | None, typer.Option(
        rich_help_panel=_S, help="IANA time zone for --cron")] = None,
    every: Annotated[str | None, typer.Option(
        metavar="RATE", rich_help_panel=_S, help="a rate: 5m, 'every 2h'")] = None,
    iso: Annotated[str | None, typer.Option(
        metavar="R/START/DURATION", rich_help_panel=_S,
        help="ISO 8601 repeating interval")] = None,
    schedule: Annotated[str | None, typer.Option(
        metavar="JSON", rich_help_panel=_S,
        help="any schedule as JSON, e.g. a simple trigger")] = None,
    url: Annotated[str | None, typer.Option(
        metavar="URL", rich_help_panel=_T, help="deliver by HTTP (POST unless --method)")]
    = None,
    method: Annotated[str | None, typer.Option(
        metavar="METHOD", rich_help_panel=_T, help="HTTP method for --url")] = None,
    grpc: Annotated[str | None, typer.Option(
        metavar="HOST:PORT", rich_help_panel=_T,
        help="deliver to a cronwheel.v1.Callback gRPC service")] = None,
    kafka: Annotated[str | None, typer.Option(
        metavar="BROKER:PORT/TOPIC", rich_help_panel=_T, help="deliver as a Kafka record")]
    = None,
    tcp: Annotated[str | None, typer.Option(
        metavar="HOST:PORT", rich_help_panel=_T,
        help="deliver as one JSON line over TCP (see docs/tcp.md)")] = None,
    worker: Annotated[str | None, typer.Option(
        metavar="TYPE", rich_help_panel=_T,
        help="run on a worker: a job type (shell, http, sql, python, ...) with --spec")]
    = None,
    command: Annotated[str | None, typer.Option(
        metavar="CMD", rich_help_panel=_T, help="run CMD on a worker (a shell job)")] = None,
    spec: Annotated[str | None, typer.Option(
        metavar="JSON", rich_help_panel=_T, help="the worker job type's spec")] = None,
    group: Annotated[str | None, typer.Option(
        metavar="NAME", rich_help_panel=_T, help="the worker group (default: default)")]
    = None,
    route: Annotated[str | None, typer.Option(
        metavar="ROUTE", rich_help_panel=_T,
        help="how a worker is picked: round-robin, random, least-busy, broadcast, ...")]
    = None,
    timeout: Annotated[float | None, typer.Option(
        metavar="SECONDS", rich_help_panel=_T,
        help="a delivery's (or a worker task's) time limit")] = None,
    target: Annotated[str | None, typer.Option(
        metavar="JSON", rich_help_panel=_T, help="any target as JSON")] = None,
    payload: PayloadOption = None,
    priority: Annotated[int | None, typer.Option(
        rich_help_panel=_P, help="higher fires first when due together")] = None,
    max_attempts: Annotated[int | None, typer.Option(
        rich_help_panel=_P, help="attempts before the run fails")] = None,
    backoff: Annotated[float | None, typer.Option(
        metavar="SECONDS", rich_help_panel=_P, help="wait before the first retry")] = None,
    max_backoff: Annotated[float | None, typer.Option(
        metavar="SECONDS", rich_help_panel=_P, help="longest wait between retries")] = None,
    misfire: Annotated[MisfirePolicy | None, typer.Option(
        rich_help_panel=_P, help="what a late fire does with the occurrences it missed")]
    = None,
    misfire_grace: Annotated[float | None, typer.Option(
        metavar="SECONDS", rich_help_panel=_P, help="how late a fire is still on time")]
    = None,
    concurrency: Annotated[ConcurrencyPolicy | None, typer.Option(
        rich_help_panel=_P, help="while the previous run is in flight")] = None,
    alert_after: Annotated[int | None, typer.Option(
        metavar="N", rich_help_panel=_P, help="alert after N failed runs in a row")] = None,
    alert_webhook: Annotated[str | None, typer.Option(
        metavar="URL", rich_help_panel=_P, help="where the alert is POSTed")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", envvar="CRONWHEEL_NAMESPACE", show_envvar=True,
        help="namespace of the job [default: default]")] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Add a job. Adding the same key with the same definition again is a no-op."""
    body = _job_body(
        key, namespace, file, payload,
        ScheduleOptions(at, after, countdown, cron, tz, every, iso, schedule),
        TargetOptions(url, method, grpc, kafka, tcp, worker, command, spec, group, route,
                      timeout, target),
        PolicyOptions(priority, max_attempts, backoff, max_backoff,
                      misfire.value if misfire else None, misfire_grace,
                      concurrency.value if concurrency else None, alert_after, alert_webhook),
    )
    with connect(server, token) as client:
        submitted = client.create_job(body)
    job = plain(submitted.job)
    name = f"{job['namespace']}/{job['key']}"
    if submitted.created:
        headline = f"created job {name}"
    else:
        headline = f"job {name} already exists with the same definition"
    print_job(job, as_json, headline)


# -- jobs ls / show ------------------------------------------------------------------------------


@jobs_app.command("ls")
def list_jobs(
    state: Annotated[State | None, typer.Option(help="only jobs in this state")] = None,
    prefix: Annotated[str | None, typer.Option(metavar="P", help="only keys starting with P")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="jobs per page")] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="follow next_cursor to the end")]
    = False,
    cursor: Annotated[str | None, typer.Option(help="start after this cursor")] = None,
    namespace: Namespace = "default",
    all_namespaces: Annotated[bool, typer.Option(
        "--all-namespaces", "-A", help="jobs of every namespace")] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List jobs, ordered by id (oldest first)."""
    where = None if all_namespaces else namespace
    wanted = state.value if state is not None else None
    with connect(server, token) as client:
        if all_pages:
            found = [plain(j) for j in client.iter_jobs(where, wanted, prefix, limit)]
            page: JsonObject = {"jobs": found, "next_cursor": None}
        else:
            page = plain(client.list_jobs(where, wanted, prefix, limit, cursor))
    print_page(page, as_json, "jobs", render.jobs_table, "no jobs",
               lambda cursor: f"more jobs: use --all, or --cursor {cursor}")


@jobs_app.command("show")
def show(
    key: Key,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show one job."""
    with connect(server, token) as client:
        job = plain(client.get_job(key, namespace))
    render.output(job, as_json, render.job_detail)


# -- jobs pause / resume / cancel / trigger / delete ---------------------------------------------


def _state_command(action: str, done: str, help_text: str) -> None:
    """pause, resume and cancel differ only in the action and the words."""

    def command(
        key: Key,
        namespace: Namespace = "default",
        server: Server = DEFAULT_SERVER,
        token: Token = None,
        as_json: AsJson = False,
    ) -> None:
        with connect(server, token) as client:
            change = {"pause": client.pause_job, "resume": client.resume_job,
                      "cancel": client.cancel_job}[action]
            job = plain(change(key, namespace))
        print_job(job, as_json, f"{done} job {namespace}/{key}")

    jobs_app.command(action, help=help_text)(command)


_state_command("pause", "paused", "Pause an active job; a countdown keeps the time it has left.")
_state_command("resume", "resumed",
               "Resume a paused job; a countdown restarts from now with the time it had left.")
_state_command("cancel", "cancelled", "Cancel a job for good: it will not fire again.")


@jobs_app.command("delete")
def delete(
    key: Key,
    delete_runs: Annotated[bool, typer.Option(
        "--delete-runs", help="delete its runs and their logs now too (default: they stay, "
        "readable by run id, until retention)")] = False,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Delete a job: it fires no more and its key is free. Its unfinished runs are cancelled."""
    with connect(server, token) as client:
        deleted = plain(client.delete_job(key, namespace, delete_runs))
    if as_json:
        render.print_json(deleted)
        return
    runs = ("its runs deleted" if deleted["runs"] == "deleted"
            else "its runs kept until retention")
    typer.echo(f"deleted job {namespace}/{key}; {runs}")


@jobs_app.command("trigger")
def trigger(
    key: Key,
    payload: PayloadOption = None,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Run a job now, outside its schedule; --payload replaces its payload for this run only."""
    with connect(server, token) as client:
        if payload is None:
            run = plain(client.trigger_job(key, namespace))
        else:
            run = plain(client.trigger_job(key, namespace, parse_json(payload, "--payload")))
    if as_json:
        render.print_json(run)
    else:
        typer.echo(f"triggered run {run.get('id')} of {namespace}/{key} ({run.get('state')})")


@jobs_app.command("runs")
def runs(
    key: Key,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="newest runs to show")] = 20,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List a job's runs, newest first."""
    with connect(server, token) as client:
        page = plain(client.job_runs(key, namespace, limit))
    print_page(page, as_json, "runs", render.runs_table, f"no runs of {namespace}/{key} yet",
               lambda _cursor: f"older runs exist: raise --limit (now {limit})")


# -- runs show -----------------------------------------------------------------------------------


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="a run id from `jobs runs`")],
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show a run and each of its delivery attempts."""
    with connect(server, token) as client:
        run = plain(client.get_run(run_id))
    render.output(run, as_json, render.run_detail)


def cluster(
    include_stopped: Annotated[bool, typer.Option(
        "--include-stopped", help="also nodes stopped more than ten minutes ago")] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List the nodes sharing the server's database: state, heartbeat, what each holds."""
    with connect(server, token) as client:
        found = plain(client.cluster(include_stopped))
    render.output(found, as_json, lambda f: Group(render.cluster_table(f),
                                                  *_kubernetes_table(f)))


def _kubernetes_table(found: JsonObject) -> list[Table]:
    """The configured Kubernetes clusters and their health, when there are any."""
    clusters = found.get("kubernetes") or []
    if not clusters:
        return []
    return [render.simple_table("kubernetes clusters", ("cluster", "ok", "detail"), (
        (str(c.get("id")), render.yes_no(c.get("ok")), str(c.get("detail") or c.get("error")))
        for c in clusters))]
