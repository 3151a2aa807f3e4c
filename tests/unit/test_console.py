"""The console's pure parts: lateness quantiles from histogram buckets, the new-job form as
the API's body, where a redirect may lead, and sessions that end."""

from __future__ import annotations

import math

import pytest

from cronwheel.domain.errors import InvalidField
from cronwheel.settings import Settings
from cronwheel.ui import forms
from cronwheel.ui.jobs import dialect_of
from cronwheel.ui.session import Sessions
from cronwheel.ui.trends import _Reading, quantile, step_between
from cronwheel.ui.web import local


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    buckets = [(0.001, 0.0), (0.01, 50.0), (0.1, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.25, buckets) == pytest.approx(0.001 + 0.009 * 0.5)
    assert quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 0.98)
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1  # beyond the last bound


def test_a_step_holds_only_what_happened_since_the_last_reading() -> None:
    before = _Reading({"success": 10.0, "error": 1.0}, ((0.01, 5.0), (math.inf, 5.0)))
    after = _Reading({"success": 13.0, "error": 1.0}, ((0.01, 7.0), (math.inf, 8.0)))
    step = step_between(before, after, at=100.0)
    assert step.outcomes == {"success": 3} and step.fired == 3
    assert step.p50 is not None and step.p50 <= 0.01
    assert step.p99 == 0.01  # a third of the fires were later than the last finite bound


def test_the_form_becomes_the_api_body_and_names_its_own_fields() -> None:
    body = forms.job_body({"key": "k", "schedule_kind": "cron", "expr": "0 9 * * 1",
                           "tz": "Europe/Berlin", "target_kind": "worker", "group": "g",
                           "job_type": "shell", "command": "echo hi", "payload": '{"a": 1}'})
    assert body.schedule == {"kind": "cron", "expr": "0 9 * * 1", "tz": "Europe/Berlin"}
    assert body.target == {"kind": "worker", "group": "g", "type": "shell",
                           "spec": {"command": "echo hi"}}
    assert body.payload == {"a": 1} and body.namespace == "default"
    once = forms.job_body({"key": "k", "schedule_kind": "once", "expr": "30",
                           "target_kind": "log"})
    assert once.schedule == {"kind": "once", "after": 30.0}
    with pytest.raises(InvalidField) as bad:
        forms.job_body({"key": "k", "expr": "* * * * *", "payload": "{nope"})
    assert bad.value.field == "payload"
    with pytest.raises(InvalidField) as empty:
        forms.job_body({"key": "", "expr": "* * * * *", "target_kind": "log"})
    assert empty.value.field == "key"


def test_only_console_paths_are_followed_after_login() -> None:
    assert local("/ui/runs?state=failed") == "/ui/runs?state=failed"
    for elsewhere in ("https://evil.example/ui", "//evil.example/ui", "/v1/jobs", None,
                      "/ui\\@evil"):
        assert local(elsewhere) == "/ui"


def test_a_session_is_found_by_its_id_until_it_expires_or_closes() -> None:
    sessions = Sessions(seconds=60)
    sid, session = sessions.open("cw_token")
    assert sessions.get(sid) is session and session.token == "cw_token"
    assert sessions.get("guess") is None and sessions.get(None) is None
    sessions.close(sid)
    assert sessions.get(sid) is None
    expired = Sessions(seconds=-1)
    sid, _ = expired.open("cw_token")
    assert expired.get(sid) is None


def test_a_jobs_dialect_is_read_from_its_namespace() -> None:
    settings, qschedule = Settings(), {"qschedule.demo"}  # the qschedule apps (app data)
    assert dialect_of("delayjob", settings, qschedule) == "delayjob"
    assert dialect_of("dispatch:billing", settings, qschedule) == "dispatchserver"
    assert dialect_of("qschedule.demo", settings, qschedule) == "qschedule"
    assert dialect_of("qschedule.demo", settings) == "native"
    assert dialect_of("default", settings, qschedule) == "native"
