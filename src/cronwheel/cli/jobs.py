"""`cronwheel jobs ...` and `cronwheel runs ...`: client commands that talk to a running node.

Exit codes: 0 done; 1 the server refused (its error printed to stderr); 2 the server could not
be reached, or the command line itself is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from cronwheel.cli import render
from cronwheel.cli.client import (
    DEFAULT_SERVER,
    ApiError,
    Client,
    JobQuery,
    JsonObject,
    Unreachable,
)

jobs_app = typer.Typer(help="Add, list, inspect and control jobs on a running node.",
                       no_args_is_help=True)
runs_app = typer.Typer(help="Inspect runs (one firing of a job) and their attempts.",
                       no_args_is_help=True)

Server = Annotated[str, typer.Option(
    "--server", envvar="CRONWHEEL_SERVER", show_envvar=True, metavar="URL",
    help="base URL of a cronwheel node",
)]
Namespace = Annotated[str, typer.Option(
    "--namespace", "-n", envvar="CRONWHEEL_NAMESPACE", show_envvar=True,
    help="namespace of the job",
)]
AsJson = Annotated[bool, typer.Option("--json", help="print the server's JSON instead of a table")]
Key = Annotated[str, typer.Argument(metavar="KEY", help="the job's key, unique in its namespace")]
PayloadOption = Annotated[str | None, typer.Option(
    "--payload", metavar="JSON", help='any JSON value, e.g. \'{"invoice": 42}\'',
)]


class State(StrEnum):
    active = "active"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"


@contextmanager
def _connect(server: str) -> Iterator[Client]:
    """A client whose failures end the command with a one-line message, never a traceback."""
    try:
        with Client(server) as client:
            yield client
    except ApiError as exc:
        typer.echo(render.api_error(exc), err=True)
        raise typer.Exit(1) from None
    except Unreachable as exc:
        typer.echo(render.unreachable(exc), err=True)
        raise typer.Exit(2) from None


def _print_page(
    page: JsonObject, as_json: bool, field: str,
    table: Callable[[Iterable[JsonObject]], Table], empty: str, more: Callable[[str], str],
) -> None:
    """A page of a list: as JSON, or a table (or `empty`), and on stderr how to see more."""
    if as_json:
        render.print_json(page)
        return
    items = page.get(field) or []
    if items:
        render.show(table(items))
    else:
        typer.echo(empty)
    if page.get("next_cursor"):
        typer.echo(more(str(page["next_cursor"])), err=True)


def _print_job(job: JsonObject, as_json: bool, headline: str) -> None:
    """The job as JSON on stdout (and the headline on stderr), or one readable line."""
    if as_json:
        typer.echo(headline, err=True)
        render.print_json(job)
    else:
        render.show(render.job_line(headline, job))


# -- jobs add ------------------------------------------------------------------------------------

_SIMPLE_DURATION = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_UNIT_SECONDS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}


def parse_after(text: str) -> float | int | str:
    """Seconds (`90`, `1.5`), a short form (`30s`, `5m`, `1h30m`, `2d`) or an ISO 8601 duration
    (`PT30S`, passed to the server as is)."""
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return int(number) if number.is_integer() else number
    match = _SIMPLE_DURATION.match(value.lower())
    if value and match and any(match.groupdict().values()):
        total = sum((float(n) * _UNIT_SECONDS[u] for u, n in match.groupdict().items() if n), 0.0)
        return int(total) if total.is_integer() else total
    if value.upper().startswith("P"):
        return value.upper()
    raise typer.BadParameter(
        f"{text!r} is not a delay; use seconds (90), 30s, 5m, 1h30m, 2d or PT30S",
        param_hint="--after",
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None


@dataclass(frozen=True)
class ScheduleOptions:
    at: str | None = None
    after: str | None = None
    countdown: bool = False
    cron: str | None = None
    tz: str | None = None
    every: str | None = None
    iso: str | None = None
    schedule: str | None = None  # any kind, as JSON


_SCHEDULE_HINT = "--at/--after/--cron/--every/--iso/--schedule"


def build_schedule(opts: ScheduleOptions) -> JsonObject:
    given = [v for v in (opts.at, opts.after, opts.cron, opts.every, opts.iso, opts.schedule)
             if v is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one schedule", param_hint=_SCHEDULE_HINT)
    if opts.schedule is not None:
        parsed = parse_json(opts.schedule, "--schedule")
        if not isinstance(parsed, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--schedule")
        return parsed
    if opts.cron is not None:
        return {"kind": "cron", "expr": opts.cron} | ({"tz": opts.tz} if opts.tz else {})
    if opts.every is not None:
        return {"kind": "rate", "every": opts.every}
    if opts.iso is not None:
        return {"kind": "iso8601", "expr": opts.iso}
    schedule: JsonObject = {"kind": "once"}
    if opts.at is not None:
        schedule["at"] = opts.at
    else:
        schedule["after"] = parse_after(opts.after or "")
    if opts.countdown:
        schedule["countdown"] = True
    return schedule


def build_target(url: str | None, grpc: str | None, kafka: str | None) -> JsonObject:
    given = [name for name, value in (("--url", url), ("--grpc", grpc), ("--kafka", kafka))
             if value is not None]
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --url, --grpc or --kafka",
                                 param_hint="/".join(given) or "--url/--grpc/--kafka")
    if url is not None:
        return {"kind": "http", "url": url}
    if grpc is not None:
        return {"kind": "grpc", "address": grpc}
    servers, sep, topic = (kafka or "").removeprefix("kafka://").partition("/")
    if not sep or not servers or not topic:
        raise typer.BadParameter("expected BROKER:PORT[,BROKER:PORT...]/TOPIC",
                                 param_hint="--kafka")
    return {"kind": "kafka", "bootstrap": servers.split(","), "topic": topic}


@jobs_app.command("add")
def add(
    key: Key,
    at: Annotated[str | None, typer.Option(
        metavar="ISO", help="fire once at this instant (2026-11-21T18:00:00Z)")] = None,
    after: Annotated[str | None, typer.Option(
        metavar="DELAY", help="fire once after this delay: seconds, 30s, 5m, 1h30m or PT30S",
    )] = None,
    countdown: Annotated[bool, typer.Option(
        "--countdown", help="a pausable countdown: pausing keeps the time left")] = False,
    cron: Annotated[str | None, typer.Option(
        metavar="EXPR", help="cron: Unix 5 fields or Quartz 6/7 ('0 30 9 ? * MON-FRI')")] = None,
    tz: Annotated[str | None, typer.Option(help="IANA time zone for --cron")] = None,
    every: Annotated[str | None, typer.Option(metavar="RATE", help="a rate: 5m, 'every 2h'")]
    = None,
    iso: Annotated[str | None, typer.Option(
        metavar="R/START/DURATION", help="ISO 8601 repeating interval")] = None,
    schedule: Annotated[str | None, typer.Option(
        metavar="JSON", help="any schedule as JSON, e.g. a simple trigger")] = None,
    url: Annotated[str | None, typer.Option(metavar="URL", help="deliver by HTTP POST")] = None,
    grpc: Annotated[str | None, typer.Option(
        metavar="HOST:PORT", help="deliver to a cronwheel.v1.Callback gRPC service")] = None,
    kafka: Annotated[str | None, typer.Option(
        metavar="BROKER:PORT/TOPIC", help="deliver as a Kafka record")] = None,
    payload: PayloadOption = None,
    priority: Annotated[int | None, typer.Option(help="higher fires first when due together")]
    = None,
    max_attempts: Annotated[int | None, typer.Option(help="attempts before the run fails")]
    = None,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
) -> None:
    """Add a job. Adding the same key with the same definition again is a no-op."""
    opts = ScheduleOptions(at, after, countdown, cron, tz, every, iso, schedule)
    body: JsonObject = {
        "namespace": namespace,
        "key": key,
        "schedule": build_schedule(opts),
        "target": build_target(url, grpc, kafka),
    }
    if payload is not None:
        body["payload"] = parse_json(payload, "--payload")
    if priority is not None:
        body["priority"] = priority
    if max_attempts is not None:
        body["retry"] = {"max_attempts": max_attempts}
    with _connect(server) as client:
        submitted = client.submit_job(body)
    job = submitted.job
    name = f"{job.get('namespace')}/{job.get('key')}"
    if submitted.created:
        headline = f"created job {name}"
    else:
        headline = f"job {name} already exists with the same definition"
    _print_job(job, as_json, headline)


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
    as_json: AsJson = False,
) -> None:
    """List jobs, ordered by id (oldest first)."""
    query = JobQuery(
        namespace=None if all_namespaces else namespace,
        state=state.value if state is not None else None,
        key_prefix=prefix,
        limit=limit,
        cursor=cursor,
    )
    with _connect(server) as client:
        if all_pages:
            page: JsonObject = {"jobs": client.all_jobs(query), "next_cursor": None}
        else:
            page = client.list_jobs(query)
    _print_page(page, as_json, "jobs", render.jobs_table, "no jobs",
                lambda cursor: f"more jobs: use --all, or --cursor {cursor}")


@jobs_app.command("show")
def show(
    key: Key,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
) -> None:
    """Show one job."""
    with _connect(server) as client:
        job = client.get_job(namespace, key)
    render.output(job, as_json, render.job_detail)


# -- jobs pause / resume / cancel / trigger ------------------------------------------------------


def _state_command(action: str, done: str, help_text: str) -> None:
    """pause, resume and cancel differ only in the action and the words."""

    def command(
        key: Key,
        namespace: Namespace = "default",
        server: Server = DEFAULT_SERVER,
        as_json: AsJson = False,
    ) -> None:
        with _connect(server) as client:
            job = client.change_job(namespace, key, action)
        _print_job(job, as_json, f"{done} job {namespace}/{key}")

    jobs_app.command(action, help=help_text)(command)


_state_command("pause", "paused", "Pause an active job; a countdown keeps the time it has left.")
_state_command("resume", "resumed",
               "Resume a paused job; a countdown restarts from now with the time it had left.")
_state_command("cancel", "cancelled", "Cancel a job for good: it will not fire again.")


@jobs_app.command("trigger")
def trigger(
    key: Key,
    payload: PayloadOption = None,
    namespace: Namespace = "default",
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
) -> None:
    """Run a job now, outside its schedule; --payload replaces its payload for this run only."""
    with _connect(server) as client:
        if payload is None:
            run = client.trigger_job(namespace, key)
        else:
            run = client.trigger_job(namespace, key, parse_json(payload, "--payload"))
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
    as_json: AsJson = False,
) -> None:
    """List a job's runs, newest first."""
    with _connect(server) as client:
        page = client.job_runs(namespace, key, limit)
    _print_page(page, as_json, "runs", render.runs_table, f"no runs of {namespace}/{key} yet",
                lambda _cursor: f"older runs exist: raise --limit (now {limit})")


# -- runs show -----------------------------------------------------------------------------------


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="a run id from `jobs runs`")],
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
) -> None:
    """Show a run and each of its delivery attempts."""
    with _connect(server) as client:
        run = client.get_run(run_id)
    render.output(run, as_json, render.run_detail)


def cluster(server: Server = DEFAULT_SERVER, as_json: AsJson = False) -> None:
    """List the nodes sharing the server's database: heartbeat, alive, what each holds."""
    with _connect(server) as client:
        found = client.cluster()
    render.output(found, as_json, lambda f: Group(render.simple_table(
        f"cluster at {f.get('now')} (answered by {f.get('node')})",
        ("node", "name", "address", "alive", "heartbeat", "jobs held", "runs held", "started"),
        ((str(n.get("owner")), str(n.get("name")), str(n.get("address")),
          render.yes_no(n.get("alive")), render.timestamp(n.get("heartbeat_at")),
          str(n.get("jobs_held")), str(n.get("runs_held")), render.timestamp(n.get("started_at")))
         for n in f.get("nodes", [])),
    ), *_kubernetes_table(f)))


def _kubernetes_table(found: dict[str, Any]) -> list[Any]:
    """The configured Kubernetes clusters and their health, when there are any."""
    clusters = found.get("kubernetes") or []
    if not clusters:
        return []
    return [render.simple_table("kubernetes clusters", ("cluster", "ok", "detail"), (
        (str(c.get("id")), render.yes_no(c.get("ok")), str(c.get("detail") or c.get("error")))
        for c in clusters))]
