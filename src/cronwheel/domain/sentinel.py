"""The Sentinel dialect's vocabulary, translated purely (seed 002: Mogujie's Jarvis 2 REST API).

A Sentinel job is a worker job: `jobType` "shell" runs its `content` as a shell script, any
other type is the worker command type of that name (lowercased). Its time expressions
(`scheduleExpressionList`: 1 cron, 2 rate, 3 delay, 4 ISO 8601) become the items of a union
schedule whose ids are the expressionIds; its `dependencyList` (preJobId, commonStrategy 1 ALL /
2 LASTONE / 3 ANYONE, offsetStrategy window) becomes `depends_on`. Numbers arrive as JSON
numbers or as strings (Jarvis's clients send both); every refusal names the field as Sentinel
spells it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from dateutil.relativedelta import relativedelta

from cronwheel.domain.dependencies import Strategy
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.job_schedules import Change, Op
from cronwheel.domain.runs import RunState
from cronwheel.domain.time import US_PER_MS, Micros, from_datetime, to_datetime, to_iso
from cronwheel.domain.windows import parse_window

MAX_LONG = 2**63 - 1
MAX_TEXT = 255
MAX_CONTENT = 1_048_576
DEFAULT_EXPIRED_S = 86_400
DEFAULT_FAILED_INTERVAL_S = 3
MAX_FAILED_ATTEMPTS = 99  # a run has at most 100 attempts
SHELL = "shell"
_JOB_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_UNIT_EXPR = re.compile(r"^([smhdwMy])\((?:'(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})',)?(\d{1,9})\)$")
_ISO_PERIOD = {"s": "PT{}S", "m": "PT{}M", "h": "PT{}H", "d": "P{}D", "w": "P{}W",
               "M": "P{}M", "y": "P{}Y"}


class JobStatus(IntEnum):
    """A Sentinel job's status: 1 valid, 2 invalid, 3 expired, 4 trash, 5 paused."""

    VALID = 1
    INVALID = 2
    EXPIRED = 3
    TRASH = 4
    PAUSED = 5


class TaskStatus(IntEnum):
    WAITING = 1
    READY = 2
    RUNNING = 3
    SUCCESS = 4
    FAILED = 5
    KILLED = 6
    REMOVED = 99


# A run's state as a Sentinel task status. Runs that ended without ever running (cancelled,
# missed, skipped, expired) are "removed": Jarvis drops a task it could not start in time.
TASK_STATUS: dict[RunState, TaskStatus] = {
    RunState.WAITING: TaskStatus.WAITING,
    RunState.PENDING: TaskStatus.READY,
    RunState.RUNNING: TaskStatus.RUNNING,
    RunState.SUCCEEDED: TaskStatus.SUCCESS,
    RunState.FAILED: TaskStatus.FAILED,
    RunState.KILLED: TaskStatus.KILLED,
    RunState.CANCELLED: TaskStatus.REMOVED,
    RunState.MISSED: TaskStatus.REMOVED,
    RunState.SKIPPED: TaskStatus.REMOVED,
    RunState.EXPIRED: TaskStatus.REMOVED,
}

STRATEGIES = {1: Strategy.ALL, 2: Strategy.LAST, 3: Strategy.ANY}
STRATEGY_CODES = {strategy: code for code, strategy in STRATEGIES.items()}
OPERATORS = {1: Op.ADD, 2: Op.EDIT, 3: Op.REMOVE}
CONTENT_TYPES = {1: "text", 2: "script", 3: "jar"}


@dataclass(frozen=True, slots=True)
class SentinelJob:
    """What the dialect keeps beside a job it made: the jobId (the job's key is its text),
    and Sentinel's own fields."""

    id: int
    app: str
    namespace: str
    name: str
    department: str
    biz_groups: str
    info: Mapping[str, Any]  # jobType, contentType, status, priority, isTemp, ... as set
    created_at: Micros

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class DependencyChange:
    op: Op
    pre_job_id: int
    strategy: Strategy = Strategy.ALL
    window: str = "cd"


@dataclass(frozen=True, slots=True)
class JobFields:
    """A submit's or an edit's fields, checked; None where an edit leaves a field alone."""

    name: str | None = None
    job_type: str | None = None
    content_type: int | None = None
    content: str | None = None
    params: dict[str, str] | None = None
    status: JobStatus | None = None
    priority: int | None = None
    is_temp: bool | None = None
    active_start_ms: int | None = None
    active_end_ms: int | None = None
    expired_time_s: int | None = None
    failed_attempts: int | None = None
    failed_interval_s: int | None = None
    worker_group_id: int | None = None
    department: str | None = None
    biz_groups: str | None = None
    dependencies: list[DependencyChange] = field(default_factory=list)
    expressions: list[Change] = field(default_factory=list)


# -- reading values ----------------------------------------------------------------------------


def whole(data: Mapping[str, Any], name: str, lo: int = 0, hi: int = MAX_LONG,
          path: str | None = None) -> int | None:
    """An integer field (a JSON number, or a string of digits); None when absent or null."""
    value = data.get(name)
    where = path or name
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(f"{where} must be a whole number", where)
    if not lo <= value <= hi:
        raise InvalidField(f"{where} must be between {lo} and {hi}", where)
    return value


def required_whole(data: Mapping[str, Any], name: str, lo: int = 1, hi: int = MAX_LONG,
                   path: str | None = None) -> int:
    value = whole(data, name, lo, hi, path)
    if value is None:
        raise InvalidField(f"{path or name} is required", path or name)
    return value


def text(data: Mapping[str, Any], name: str, most: int = MAX_TEXT) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidField(f"{name} must be a string", name)
    if len(value) > most:
        raise InvalidField(f"{name} is at most {most} characters", name)
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in value) and most <= MAX_TEXT:
        raise InvalidField(f"{name} must not contain control characters", name)
    return value


def flag(data: Mapping[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "true", "false", "True", "False"):
        return str(value).lower() in ("1", "true")
    raise InvalidField(f"{name} must be true or false (or 1 or 0)", name)


def id_list(data: Mapping[str, Any], name: str, most: int) -> list[int]:
    """A list of ids (numbers, or strings of digits), each once, in order; not empty."""
    value = data.get(name)
    if isinstance(value, str):
        value = [part for part in value.replace("[", "").replace("]", "").split(",")
                 if part.strip()]
    if not isinstance(value, list) or not value:
        raise InvalidField(f"{name} must be a non-empty list of ids", name)
    if len(value) > most:
        raise InvalidField(f"{name} holds at most {most} ids", name)
    ids = [required_whole({"v": item}, "v", 1, MAX_LONG, f"{name}[{index}]")
           for index, item in enumerate(value)]
    return list(dict.fromkeys(ids))


def object_list(data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidField(f"{name} must be a list", name)
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidField(f"{name}[{index}] must be an object", f"{name}[{index}]")
    return value


# -- a job's fields ------------------------------------------------------------------------------


def job_fields(data: Mapping[str, Any], now: Micros, tz: str, adding: bool) -> JobFields:
    """The fields of a submit (`adding`: jobName, jobType and content required) or an edit."""
    name = text(data, "jobName")
    job_type = text(data, "jobType", 64)
    content = text(data, "content", MAX_CONTENT)
    if adding:
        for given, called in ((name, "jobName"), (job_type, "jobType"), (content, "content")):
            if given is None:
                raise InvalidField(f"{called} is required", called)
    if name is not None and not name.strip():
        raise InvalidField("jobName must not be blank", "jobName")
    if job_type is not None and not _JOB_TYPE.match(job_type):
        raise InvalidField("jobType is a type name such as shell, hive or presto", "jobType")
    status = whole(data, "status", 1, 5)
    start = whole(data, "activeStartDate", 0, MAX_LONG // US_PER_MS)
    end = whole(data, "activeEndDate", 0, MAX_LONG // US_PER_MS)
    if start and end and start > end:
        raise InvalidField("activeStartDate must not be after activeEndDate", "activeStartDate")
    department = text(data, "department")
    if department is None and data.get("departmentId") is not None:  # Jarvis's own field
        department = str(whole(data, "departmentId", 0))
    return JobFields(
        name=name, job_type=None if job_type is None else job_type.lower(),
        content_type=whole(data, "contentType", 1, 3), content=content,
        params=_params(data), status=None if status is None else JobStatus(status),
        priority=whole(data, "priority", 0, 1_000_000), is_temp=flag(data, "isTemp"),
        active_start_ms=start, active_end_ms=end,
        expired_time_s=whole(data, "expiredTime", 1, 366 * 86_400),
        failed_attempts=whole(data, "failedAttempts", 0, MAX_FAILED_ATTEMPTS),
        failed_interval_s=whole(data, "failedInterval", 0, 86_400),
        worker_group_id=whole(data, "workerGroupId", 1, 2**31 - 1),
        department=department, biz_groups=_biz_groups(data),
        dependencies=dependency_changes(data, adding),
        expressions=expression_changes(data, now, tz, adding, (start or 0, end or 0)),
    )


def _params(data: Mapping[str, Any]) -> dict[str, str] | None:
    """`params`: a JSON object of extension parameters (or its text); values become text."""
    value = data.get("params")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidField("params must be a JSON object of key-value pairs",
                               "params") from None
    if not isinstance(value, Mapping) or len(value) > 256:
        raise InvalidField("params must be a JSON object of at most 256 key-value pairs",
                           "params")
    return {str(k)[:MAX_TEXT]: v if isinstance(v, str) else str(v) for k, v in value.items()}


def _biz_groups(data: Mapping[str, Any]) -> str | None:
    value = text(data, "bizGroups", 4096)
    if value is None:
        return None
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not all(part.isdigit() and part.isascii() for part in ids):
        raise InvalidField("bizGroups is a comma-separated list of ids such as ',1,2,'",
                           "bizGroups")
    return f",{','.join(ids)}," if ids else ""


def dependency_changes(data: Mapping[str, Any], adding: bool) -> list[DependencyChange]:
    changes: list[DependencyChange] = []
    for index, entry in enumerate(object_list(data, "dependencyList") or []):
        at = f"dependencyList[{index}]"
        op = OPERATORS[required_whole(entry, "operatorMode", 1, 3, f"{at}.operatorMode")]
        if adding and op is not Op.ADD:
            raise InvalidField("a new job's dependencies are all ADD (operatorMode 1)",
                               f"{at}.operatorMode")
        pre = required_whole(entry, "preJobId", 1, MAX_LONG, f"{at}.preJobId")
        code = whole(entry, "commonStrategy", 1, 3, f"{at}.commonStrategy") or 1
        window = entry.get("offsetStrategy")
        if window is not None and not isinstance(window, str):
            raise InvalidField("offsetStrategy must be a string such as cd or d(1)",
                               f"{at}.offsetStrategy")
        checked = str(parse_window(window, f"{at}.offsetStrategy"))
        changes.append(DependencyChange(op, pre, STRATEGIES[code], checked))
    return changes


def expression_changes(data: Mapping[str, Any], now: Micros, tz: str, adding: bool,
                       active: tuple[int, int] = (0, 0)) -> list[Change]:
    """`scheduleExpressionList` as changes of the job's union schedule (ids: expressionIds)."""
    changes: list[Change] = []
    for index, entry in enumerate(object_list(data, "scheduleExpressionList") or []):
        at = f"scheduleExpressionList[{index}]"
        op = OPERATORS[required_whole(entry, "operatorMode", 1, 3, f"{at}.operatorMode")]
        if adding and op is not Op.ADD:
            raise InvalidField("a new job's expressions are all ADD (operatorMode 1)",
                               f"{at}.operatorMode")
        given = whole(entry, "expressionId", 0, MAX_LONG, f"{at}.expressionId") or 0
        if op is not Op.ADD and not given:
            raise InvalidField("to edit or delete an expression, give its expressionId",
                               f"{at}.expressionId")
        item_id = str(given) if given else None
        if op is Op.REMOVE:
            changes.append(Change(op, item_id))
            continue
        kind = whole(entry, "expressionType", 1, 4, f"{at}.expressionType") or 1
        expr = entry.get("expression")
        if not isinstance(expr, str) or not expr.strip() or len(expr) > 1_000:
            raise InvalidField("expression is required: the text of the time expression",
                               f"{at}.expression")
        changes.append(Change(op, item_id, expression_item(kind, expr.strip(), now, tz,
                                                           active, f"{at}.expression")))
    return changes


def expression_item(kind: int, expr: str, now: Micros, tz: str,
                    active: tuple[int, int] = (0, 0), where: str = "expression"
                    ) -> dict[str, Any]:
    """One Sentinel time expression as a schedule of the union.

    1 cron (Quartz or Unix, in the dialect's zone, bounded by the active dates); 2 rate `X(n)`
    or `X('yyyy-MM-dd HH:mm:ss',n)` (every n units from that wall time, or from now), an
    ISO 8601 repetition; 3 delay `X(n)`, once n units from now; 4 ISO 8601 `R[n]/start/period`
    (an empty start is now, as Jarvis reads it).
    """
    if kind == 1:
        return _cron_item(expr, tz, active)
    if kind == 4:
        parts = expr.split("/")
        if len(parts) == 3 and not parts[1].strip():
            expr = f"{parts[0]}/{to_iso(now)}/{parts[2]}"
        return {"kind": "iso8601", "expr": expr}
    return _unit_item(kind, expr, now, tz, where)


def _cron_item(expr: str, tz: str, active: tuple[int, int]) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": "cron", "expr": expr, "tz": tz}
    start, end = active
    if start:
        item["start"] = to_iso(start * US_PER_MS)
    if end:
        item["end"] = to_iso(end * US_PER_MS)
    return item


def _unit_item(kind: int, expr: str, now: Micros, tz: str, where: str) -> dict[str, Any]:
    found = _UNIT_EXPR.match(expr)
    if found is None or (kind == 3 and found.group(2)):
        form = "X(n)" if kind == 3 else "X(n) or X('yyyy-MM-dd HH:mm:ss',n)"
        raise InvalidField(f"a {'delay' if kind == 3 else 'rate'} is {form} with X one of "
                           f"s m h d w M y, got {expr!r}", where)
    unit, first, amount = found.group(1), found.group(2), int(found.group(3))
    if amount < 1:
        raise InvalidField("the number of units must be at least 1", where)
    zone = ZoneInfo(tz)
    local_now = to_datetime(now).astimezone(zone)
    step = _delta(unit, amount)
    if kind == 3:
        return {"kind": "once", "at": to_iso(from_datetime(_shifted(local_now, step, where)))}
    if first is not None:
        try:
            start = datetime.strptime(first, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
        except ValueError:
            raise InvalidField(f"{first!r} is not a date and time", where) from None
    else:
        start = _shifted(local_now, step, where)
    return {"kind": "iso8601",
            "expr": f"R/{to_iso(from_datetime(start))}/{_ISO_PERIOD[unit].format(amount)}"}


def _delta(unit: str, amount: int) -> relativedelta:
    if unit == "s":
        return relativedelta(seconds=amount)
    if unit == "m":
        return relativedelta(minutes=amount)
    if unit == "h":
        return relativedelta(hours=amount)
    if unit == "d":
        return relativedelta(days=amount)
    if unit == "w":
        return relativedelta(weeks=amount)
    return relativedelta(months=amount) if unit == "M" else relativedelta(years=amount)


def _shifted(moment: datetime, step: relativedelta, where: str) -> datetime:
    try:
        shifted: datetime = moment + step
    except (OverflowError, ValueError):
        raise InvalidField("the expression reaches past year 9999", where) from None
    if shifted.year > 9998:
        raise InvalidField("the expression reaches past year 9999", where)
    return shifted


# -- what the dialect shows ------------------------------------------------------------------------


def worker_target(job_type: str, content: str, content_type: int, group: int,
                  params: Mapping[str, str]) -> dict[str, Any]:
    """shell runs the content as a script; any other type is the worker command type of the
    same name, handed the content (and its kind: text, script, jar). Either way the task's
    stdout is its result and its stderr its log, as Jarvis keeps them."""
    if job_type == SHELL:
        spec: dict[str, Any] = {"script": content}
        if params:
            spec["env"] = dict(params)
    else:
        spec = {"content": content, "content_type": CONTENT_TYPES[content_type]}
        if params:
            spec["params"] = dict(params)
    spec["stdout"] = "result"
    return {"kind": "worker", "group": str(group), "type": job_type, "spec": spec}


def retry_policy(failed_attempts: int, failed_interval_s: int) -> dict[str, Any]:
    """failedAttempts retries, failedInterval seconds apart (no growth, no jitter)."""
    return {"max_attempts": failed_attempts + 1, "initial_backoff": failed_interval_s,
            "max_backoff": failed_interval_s, "multiplier": 1.0, "jitter": 0.0}


def millis(value: Micros | None) -> int | None:
    return None if value is None else value // US_PER_MS


def seconds_window(start_ms: int | None, end_ms: int | None) -> tuple[Micros, Micros] | None:
    if start_ms is None or end_ms is None:
        return None
    return start_ms * US_PER_MS, end_ms * US_PER_MS

