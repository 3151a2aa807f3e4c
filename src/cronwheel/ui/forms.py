"""The new-job form: its fields to the API's own `JobIn` body, so a job made in the console
is checked exactly like one posted to /v1/jobs."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from cronwheel.api.schemas import JobIn
from cronwheel.domain.errors import InvalidField

SCHEDULE_KINDS = ("cron", "rate", "once", "iso8601")
TARGET_KINDS = ("http", "worker", "log", "json")
DEFAULTS = {"namespace": "default", "schedule_kind": "cron", "expr": "*/5 * * * *",
            "target_kind": "http", "method": "POST", "group": "default", "job_type": "shell",
            "max_attempts": "3", "concurrency": "allow", "level": "info"}


LABELS = {"namespace": "Namespace", "key": "Key", "schedule_kind": "Schedule",
          "expr": "Expression", "tz": "Time zone", "target_kind": "Target", "url": "URL",
          "method": "Method", "group": "Worker group", "command": "Shell command",
          "spec": "Spec", "target_json": "Target as JSON", "payload": "Payload",
          "max_attempts": "Attempts at most", "concurrency": "While a run is in flight"}


def schedule_of(form: dict[str, str]) -> dict[str, Any]:
    kind = form.get("schedule_kind", "cron")
    expr = form.get("expr", "").strip()
    if kind not in SCHEDULE_KINDS:
        raise InvalidField(f"schedule must be one of {', '.join(SCHEDULE_KINDS)}",
                           "schedule_kind")
    if not expr:
        raise InvalidField("say when: an expression, a rate or a time", "expr")
    if kind == "rate":
        return {"kind": "rate", "every": expr}
    if kind == "once":
        try:
            return {"kind": "once", "after": float(expr)}
        except ValueError:
            return {"kind": "once", "at": expr}
    data: dict[str, Any] = {"kind": kind, "expr": expr}
    if kind == "cron" and form.get("tz", "").strip():
        data["tz"] = form["tz"].strip()
    return data


def target_of(form: dict[str, str]) -> dict[str, Any]:
    kind = form.get("target_kind", "http")
    if kind == "http":
        return {"kind": "http", "url": form.get("url", "").strip(),
                "method": form.get("method", "POST")}
    if kind == "worker":
        spec: Any = {"command": form.get("command", "")}
        if form.get("job_type", "shell") != "shell" or form.get("spec", "").strip():
            spec = _json(form.get("spec", ""), "spec", {})
        return {"kind": "worker", "group": form.get("group", "default").strip(),
                "type": form.get("job_type", "shell").strip(), "spec": spec}
    if kind == "log":
        return {"kind": "log", "level": form.get("level", "info")}
    if kind == "json":
        found = _json(form.get("target_json", ""), "target_json", None)
        if not isinstance(found, dict):
            raise InvalidField("the target is a JSON object with a 'kind'", "target_json")
        return found
    raise InvalidField(f"target must be one of {', '.join(TARGET_KINDS)}", "target_kind")


def _json(text: str, field: str, empty: Any) -> Any:
    if not text.strip():
        return empty
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidField(f"not JSON: {exc}", field) from None


def job_body(form: dict[str, str]) -> JobIn:
    """The API body the form stands for; InvalidField names the form's field."""
    body = {
        "namespace": form.get("namespace", "").strip() or "default",
        "key": form.get("key", "").strip(),
        "schedule": schedule_of(form),
        "target": target_of(form),
        "payload": _json(form.get("payload", ""), "payload", None),
        "retry": {"max_attempts": form.get("max_attempts") or 3},
        "concurrency": form.get("concurrency") or "allow",
    }
    try:
        return JobIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = [str(p) for p in first["loc"]]
        raise InvalidField(first["msg"], form_field(".".join(where))) from None


def form_field(api_field: str | None) -> str:
    """The form's field for an API field name (`schedule.expr` is the expression box)."""
    name = api_field or ""
    head = name.split(".")[0].split("[")[0]
    if head == "schedule":
        return "tz" if name.endswith(".tz") else "expr"
    if head == "target":
        tail = name.split(".")[-1]
        return tail if tail in ("url", "group", "method", "level") else "target_kind"
    if head == "retry":
        return "max_attempts"
    return head or "key"
