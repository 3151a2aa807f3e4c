"""How the client commands show jobs, runs and errors: rich tables, or raw JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from cronwheel.client import ApiError, Unreachable
from cronwheel.client.calls import JsonObject

_PIPE_WIDTH = 200  # a table written to a pipe or file is not wrapped to 80 columns
_STATE_STYLE = {
    "active": "green",
    "paused": "yellow",
    "completed": "blue",
    "cancelled": "dim",
    "pending": "cyan",
    "waiting": "cyan",
    "expired": "dim",
    "missing": "red",
    "running": "magenta",
    "succeeded": "green",
    "success": "green",
    "failed": "red",
    "failure": "red",
    "timeout": "red",
    "error": "red",
    "abandoned": "yellow",
    "missed": "dim",
}


def console() -> Console:
    width = None
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        width = _PIPE_WIDTH
    return Console(width=width, highlight=False, soft_wrap=False)


def show(renderable: RenderableType) -> None:
    console().print(renderable)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def output(value: JsonObject, as_json: bool, build: Callable[[JsonObject], RenderableType]) -> None:
    """The server's JSON as it came (`--json`), or what `build` makes of it for a reader."""
    if as_json:
        print_json(value)
    else:
        show(build(value))


def new_table(title: str | None = None) -> Table:
    """Every list the CLI prints has this one look: a bold header, no outer frame, the title
    (if any) on the left."""
    return Table(title=Text(title) if title else None, title_justify="left", title_style="bold",
                 show_edge=False, header_style="bold")


def simple_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = new_table(title)
    for column in columns:
        table.add_column(column, no_wrap=column != columns[-1])
    for row in rows:
        table.add_row(*row)
    return table


def cluster_table(found: JsonObject) -> Table:
    title = f"cluster at {timestamp(found.get('now'))} (answered by {found.get('node')})"
    return simple_table(
        title, ("node", "name", "address", "state", "heartbeat", "jobs held", "runs held",
                "started"),
        ((str(n.get("owner")), str(n.get("name")), str(n.get("address")),
          str(n.get("state") or ("alive" if n.get("alive") else "not alive")),
          timestamp(n.get("heartbeat_at")), str(n.get("jobs_held")), str(n.get("runs_held")),
          timestamp(n.get("started_at")))
         for n in found.get("nodes", [])),
    )


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


# -- errors --------------------------------------------------------------------------------------


def api_error(exc: ApiError) -> str:
    line = f"error: {exc.message}"
    if exc.status == 401:
        line += " (give a token: --token, CRONWHEEL_TOKEN, or run on the server's machine)"
    if exc.field:
        line += f" (field: {exc.field})"
    lines = [line]
    for extra in exc.details.get("fields") or exc.details.get("items") or []:
        if isinstance(extra, dict) and extra.get("field") != exc.field:
            lines.append(f"  {extra.get('field')}: {extra.get('message')}")
    return "\n".join(lines)


def unreachable(exc: Unreachable) -> str:
    return f"cannot reach cronwheel at {exc.server}: {exc.reason}"


# -- values --------------------------------------------------------------------------------------


def _parse(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def timestamp(iso: str | None, precise: bool = False) -> str:
    """2026-11-21T18:00:00.123456Z as 2026-11-21 18:00:00Z, or with `precise` as
    2026-11-21 18:00:00.123Z; '-' for none."""
    value = _parse(iso)
    if value is None:
        return iso or "-"
    value = value.astimezone(UTC)
    if precise:
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def needs_ms(*isos: Any) -> bool:
    """Whether seconds would mislead: some instant falls between two seconds (a fire is
    recorded up to fire_lead_ms ahead of its instant, so at seconds it would read as a
    second early)."""
    return any(value is not None and value.microsecond != 0
               for value in (_parse(iso) if isinstance(iso, str) else None for iso in isos))


def duration(seconds: float) -> str:
    """A short human duration: 450ms, 12.5s, 3m20s, 2h05m, 3d04h."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f}s".replace(".0s", "s")
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d{hours:02d}h"


def relative(iso: str | None, now: datetime | None = None) -> str:
    value = _parse(iso)
    if value is None:
        return ""
    delta = (value - (now or datetime.now(UTC))).total_seconds()
    return f"in {duration(delta)}" if delta >= 0 else f"{duration(-delta)} ago"


def next_fire(job: JsonObject) -> Text:
    remaining = job.get("remaining")
    if job.get("state") == "paused" and isinstance(remaining, int | float):
        return Text(f"paused, {duration(remaining)} left", style="yellow")
    at = job.get("next_fire_at")
    if not at:
        return Text("-", style="dim")
    return Text(timestamp(at)).append(f" ({relative(at)})", style="dim")


def job_line(headline: str, job: JsonObject) -> Text:
    """`created job default/a1: active, next fire 2026-11-21 18:00:00Z (in 5s)`."""
    line = Text(f"{headline}: ").append_text(state(job.get("state")))
    remaining = job.get("remaining")
    if job.get("state") == "paused" and isinstance(remaining, int | float):
        line.append(f", {duration(remaining)} left")
    elif job.get("state") == "active" and job.get("next_fire_at"):
        line.append(", next fire ").append_text(next_fire(job))
    return line


def short_target(target: Any) -> str:
    if not isinstance(target, dict):
        return str(target)
    kind = target.get("kind")
    if kind == "http":
        method = target.get("method") or "POST"
        return f"{method} {target.get('url')}"
    if kind == "grpc":
        return f"grpc {target.get('address')}"
    if kind == "kafka":
        bootstrap = target.get("bootstrap") or []
        servers = ",".join(bootstrap) if isinstance(bootstrap, list) else str(bootstrap)
        return f"kafka {servers}/{target.get('topic')}"
    if kind == "tcp":
        return f"tcp {target.get('host')}:{target.get('port')}"
    if kind == "worker":
        return f"worker {target.get('type')} on {target.get('group') or 'default'}"
    return json.dumps(target, separators=(",", ":"))


def schedule_text(schedule: Any) -> str:
    if isinstance(schedule, dict) and schedule.get("kind") == "once":
        text = f"once at {timestamp(schedule.get('at'))}"
        return text + " (countdown)" if schedule.get("countdown") else text
    if isinstance(schedule, dict) and schedule.get("kind") in ("cron", "iso8601"):
        zone = f" {schedule['tz']}" if schedule.get("tz") else ""
        return f"{schedule['kind']} {schedule.get('expr')}{zone}"
    if isinstance(schedule, dict) and schedule.get("kind") == "rate":
        return f"every {schedule.get('every')}"
    if isinstance(schedule, dict) and isinstance(schedule.get("items"), list):  # a union
        return "; ".join(f"[{item.get('id')}] {schedule_text(item)}"
                         for item in schedule["items"] if isinstance(item, dict))
    return json.dumps(schedule, separators=(",", ":"))


def state(value: Any) -> Text:
    text = str(value) if value is not None else "-"
    return Text(text, style=_STATE_STYLE.get(text, ""))


def _plain(value: Any) -> Text:
    if value is None or value == "":
        return Text("-", style="dim")
    return Text(str(value))


def _compact_json(value: Any) -> Text:
    return Text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _one_line(value: Any, limit: int = 80) -> Text:
    if value is None or value == "":
        return Text("-", style="dim")
    text = " ".join(str(value).split())
    return Text(text if len(text) <= limit else text[: limit - 1] + "…")


# -- tables --------------------------------------------------------------------------------------


def jobs_table(jobs: Iterable[JsonObject]) -> Table:
    table = new_table()
    table.add_column("key", no_wrap=True)
    table.add_column("namespace", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("next fire", no_wrap=True)
    table.add_column("target", overflow="fold")
    table.add_column("priority", justify="right")
    for job in jobs:
        table.add_row(
            _plain(job.get("key")),
            _plain(job.get("namespace")),
            state(job.get("state")),
            next_fire(job),
            Text(short_target(job.get("target"))),
            _plain(job.get("priority")),
        )
    return table


def _fields_table(title: str, rows: Iterable[tuple[str, Text]]) -> Table:
    table = Table(title=Text(title), title_justify="left", title_style="bold", show_header=False,
                  show_edge=False, box=None, padding=(0, 2, 0, 0))
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def job_detail(job: JsonObject) -> Table:
    retry = job.get("retry") or {}
    misfire = job.get("misfire") or {}
    alert = job.get("alert") or {}
    rows = [
        ("id", _plain(job.get("id"))),
        ("namespace", _plain(job.get("namespace"))),
        ("key", _plain(job.get("key"))),
        ("state", state(job.get("state"))),
        ("schedule", Text(schedule_text(job.get("schedule")))),
        ("next fire", next_fire(job)),
        ("last fire", Text(timestamp(job.get("last_fire_at")))),
        ("target", Text(short_target(job.get("target")))),
        ("payload", _compact_json(job.get("payload"))),
        ("priority", _plain(job.get("priority"))),
        ("retry", Text(f"up to {retry.get('max_attempts')} attempts, backoff "
                       f"{retry.get('initial_backoff')}s..{retry.get('max_backoff')}s "
                       f"x{retry.get('multiplier')}")),
        ("misfire", Text(f"{misfire.get('policy')}, grace {misfire.get('grace')}s")),
        ("concurrency", _plain(job.get("concurrency"))),
        ("alert", Text(f"after {alert.get('after')} failed runs in a row to "
                       f"{alert.get('webhook')}") if alert else _plain(None)),
        ("created", Text(timestamp(job.get("created_at")))),
        ("updated", Text(timestamp(job.get("updated_at")))),
    ]
    return _fields_table(f"job {job.get('namespace')}/{job.get('key')}", rows)


def runs_table(runs: Iterable[JsonObject]) -> Table:
    listed = list(runs)
    precise = needs_ms(*(r.get(f) for r in listed for f in _RUN_TIMES))
    table = new_table()
    table.add_column("run id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("scheduled", no_wrap=True)
    table.add_column("fired", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("last error", overflow="fold")
    for run in listed:
        table.add_row(
            _plain(run.get("id")),
            _plain(run.get("kind")),
            state(run.get("state")),
            Text(timestamp(run.get("scheduled_at"), precise)),
            Text(timestamp(run.get("fired_at"), precise)),
            Text(timestamp(run.get("started_at"), precise)),
            _plain(run.get("attempts")),
            _one_line(run.get("last_error")),
        )
    return table


_RUN_TIMES = ("scheduled_at", "fired_at", "started_at", "finished_at")


def attempts_table(attempts: Iterable[JsonObject]) -> Table:
    listed = list(attempts)
    precise = needs_ms(*(a.get(f) for a in listed for f in ("started_at", "finished_at")))
    table = new_table("attempts")
    table.add_column("#", justify="right")
    table.add_column("outcome", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("node", no_wrap=True)
    table.add_column("status", justify="right")
    table.add_column("response / error", overflow="fold")
    for attempt in listed:
        start, end = _parse(attempt.get("started_at")), _parse(attempt.get("finished_at"))
        took = duration((end - start).total_seconds()) if start and end else "-"
        table.add_row(
            _plain(attempt.get("number")),
            state(attempt.get("outcome")),
            Text(timestamp(attempt.get("started_at"), precise)),
            Text(took),
            _plain(attempt.get("node")),
            _plain(attempt.get("status_code")),
            _one_line(attempt.get("error") or attempt.get("response")),
        )
    return table


def _fired(run: JsonObject, precise: bool) -> Text:
    """When the fire was recorded, and why that may be before the scheduled instant."""
    text = Text(timestamp(run.get("fired_at"), precise))
    scheduled, fired = _parse(run.get("scheduled_at")), _parse(run.get("fired_at"))
    if scheduled and fired and fired < scheduled:
        ahead = duration((scheduled - fired).total_seconds())
        text.append(f" (recorded {ahead} ahead; delivery waits for the instant)", style="dim")
    elif scheduled and fired:
        text.append(f" ({duration((fired - scheduled).total_seconds())} after the instant)",
                    style="dim")
    return text


def run_detail(run: JsonObject) -> Group:
    precise = needs_ms(*(run.get(f) for f in _RUN_TIMES))
    rows = [
        ("id", _plain(run.get("id"))),
        ("job", Text(f"{run.get('namespace')}/{run.get('key')}")),
        ("job id", _plain(run.get("job_id"))),
        ("kind", _plain(run.get("kind"))),
        ("state", state(run.get("state"))),
        ("scheduled", Text(timestamp(run.get("scheduled_at"), precise))),
        ("fired", _fired(run, precise)),
        ("started", Text(timestamp(run.get("started_at"), precise))),
        ("finished", Text(timestamp(run.get("finished_at"), precise))),
        ("attempts", _plain(run.get("attempts"))),
        ("node", _plain(run.get("node"))),
        ("last error", _plain(run.get("last_error"))),
    ]
    if run.get("payload") is not None:
        rows.append(("payload", _compact_json(run.get("payload"))))
    parts: list[RenderableType] = [_fields_table(f"run {run.get('id')}", rows), Text("")]
    attempts = run.get("attempt_log") or []
    parts.append(attempts_table(attempts) if attempts else Text("no attempts yet", style="dim"))
    return Group(*parts)
