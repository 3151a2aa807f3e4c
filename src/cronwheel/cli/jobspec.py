"""`jobs add`'s options made into the body of POST /v1/jobs: a schedule, a target of any
kind, and the policies (retry, misfire, concurrency, alert); or a whole job from a file."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from cronwheel.cli.common import parse_json
from cronwheel.client.calls import JsonObject

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


def load_job_file(path: str) -> JsonObject:
    """A job as JSON, from a file or from stdin (`-`)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="-f") from None
    found = parse_json(text, "-f")
    if not isinstance(found, dict):
        raise typer.BadParameter("the file must hold one JSON object (a job)", param_hint="-f")
    return found


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


def build_schedule(opts: ScheduleOptions, required: bool = True) -> JsonObject | None:
    """The schedule the options describe; None when none is given and one is not required
    (a job file has it)."""
    given = [v for v in (opts.at, opts.after, opts.cron, opts.every, opts.iso, opts.schedule)
             if v is not None]
    if len(given) > 1 or (required and not given):
        raise typer.BadParameter("give exactly one schedule", param_hint=_SCHEDULE_HINT)
    if not given:
        return None
    if opts.schedule is not None:
        return _object(opts.schedule, "--schedule")
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


@dataclass(frozen=True)
class TargetOptions:
    url: str | None = None
    method: str | None = None
    grpc: str | None = None
    kafka: str | None = None
    tcp: str | None = None
    worker: str | None = None  # a job type: shell, http, sql, python, ...
    command: str | None = None  # a shell worker job's command
    spec: str | None = None  # a worker job type's spec, as JSON
    group: str | None = None
    route: str | None = None
    timeout: float | None = None
    target: str | None = None  # any target, as JSON


_TARGET_HINT = "--url/--grpc/--kafka/--tcp/--worker/--command/--target"


def build_target(opts: TargetOptions, required: bool = True) -> JsonObject | None:
    kinds = [name for name, value in (
        ("--url", opts.url), ("--grpc", opts.grpc), ("--kafka", opts.kafka),
        ("--tcp", opts.tcp), ("--worker", opts.worker or opts.command),
        ("--target", opts.target)) if value is not None]
    if len(kinds) > 1 or (required and not kinds):
        raise typer.BadParameter("give exactly one target", param_hint="/".join(kinds)
                                 or _TARGET_HINT)
    if not kinds:
        return None
    target = _target_of(kinds[0], opts)
    if opts.timeout is not None:
        target["timeout"] = opts.timeout
    return target


def _target_of(kind: str, opts: TargetOptions) -> JsonObject:
    if kind == "--target":
        return _object(opts.target or "", "--target")
    if kind == "--url":
        return {"kind": "http", "url": opts.url} | ({"method": opts.method} if opts.method
                                                      else {})
    if kind == "--grpc":
        return {"kind": "grpc", "address": opts.grpc}
    if kind == "--tcp":
        host, sep, port = (opts.tcp or "").rpartition(":")
        if not sep or not host or not port.isdigit():
            raise typer.BadParameter("expected HOST:PORT", param_hint="--tcp")
        return {"kind": "tcp", "host": host.strip("[]"), "port": int(port)}
    if kind == "--kafka":
        servers, sep, topic = (opts.kafka or "").removeprefix("kafka://").partition("/")
        if not sep or not servers or not topic:
            raise typer.BadParameter("expected BROKER:PORT[,BROKER:PORT...]/TOPIC",
                                     param_hint="--kafka")
        return {"kind": "kafka", "bootstrap": servers.split(","), "topic": topic}
    return _worker_target(opts)


def _worker_target(opts: TargetOptions) -> JsonObject:
    job_type = opts.worker or "shell"
    if opts.command is not None and opts.spec is not None:
        raise typer.BadParameter("give --command or --spec, not both", param_hint="--spec")
    if opts.command is not None:
        if job_type != "shell":
            raise typer.BadParameter("--command is for shell jobs; use --spec",
                                     param_hint="--command")
        spec: JsonObject = {"command": opts.command}
    else:
        spec = _object(opts.spec, "--spec") if opts.spec is not None else {}
    target: JsonObject = {"kind": "worker", "type": job_type, "spec": spec}
    for name, value in (("group", opts.group), ("route", opts.route)):
        if value is not None:
            target[name] = value
    return target


@dataclass(frozen=True)
class PolicyOptions:
    priority: int | None = None
    max_attempts: int | None = None
    backoff: float | None = None
    max_backoff: float | None = None
    misfire: str | None = None
    misfire_grace: float | None = None
    concurrency: str | None = None
    alert_after: int | None = None
    alert_webhook: str | None = None


def apply_policies(body: JsonObject, opts: PolicyOptions) -> None:
    """Set the given policies on `body`, over what a job file said."""
    if opts.priority is not None:
        body["priority"] = opts.priority
    if opts.concurrency is not None:
        body["concurrency"] = opts.concurrency
    _merge(body, "retry", {"max_attempts": opts.max_attempts, "initial_backoff": opts.backoff,
                           "max_backoff": opts.max_backoff})
    _merge(body, "misfire", {"policy": opts.misfire, "grace": opts.misfire_grace})
    if (opts.alert_after is None) != (opts.alert_webhook is None):
        raise typer.BadParameter("an alert needs both --alert-after and --alert-webhook",
                                 param_hint="--alert-after/--alert-webhook")
    if opts.alert_after is not None:
        body["alert"] = {"after": opts.alert_after, "webhook": opts.alert_webhook}


def _merge(body: JsonObject, field: str, given: dict[str, Any]) -> None:
    values = {name: value for name, value in given.items() if value is not None}
    if values:
        have = body.get(field)
        body[field] = (have if isinstance(have, dict) else {}) | values


def _object(text: str, option: str) -> JsonObject:
    parsed = parse_json(text, option)
    if not isinstance(parsed, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return parsed

