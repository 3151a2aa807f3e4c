"""Sentinel's fields and time expressions translated purely (domain/sentinel.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.job_schedules import Op
from cronwheel.domain.runs import RunState
from cronwheel.domain.schedules import schedule_from_dict
from cronwheel.domain.sentinel import (
    TASK_STATUS,
    TaskStatus,
    expression_changes,
    expression_item,
    id_list,
    job_fields,
    whole,
)
from cronwheel.domain.time import from_datetime

NOW = from_datetime(datetime(2026, 3, 18, 10, 37, tzinfo=UTC))
TZ = "Asia/Shanghai"  # 18:37 local at NOW


@pytest.mark.parametrize(("kind", "expr", "expected"), [
    (2, "h(6)", {"kind": "iso8601", "expr": "R/2026-03-18T16:37:00Z/PT6H"}),
    (2, "M(1)", {"kind": "iso8601", "expr": "R/2026-04-18T10:37:00Z/P1M"}),
    (2, "d('2026-01-01 02:00:00',1)", {"kind": "iso8601", "expr": "R/2025-12-31T18:00:00Z/P1D"}),
    (3, "m(30)", {"kind": "once", "at": "2026-03-18T11:07:00Z"}),
    (3, "y(1)", {"kind": "once", "at": "2027-03-18T10:37:00Z"}),
    (4, "R3//PT1H", {"kind": "iso8601", "expr": "R3/2026-03-18T10:37:00Z/PT1H"}),
    (1, "0 0 2 * * ?", {"kind": "cron", "expr": "0 0 2 * * ?", "tz": TZ}),
])
def test_each_expression_type_becomes_a_schedule(
    kind: int, expr: str, expected: dict[str, object]
) -> None:
    item = expression_item(kind, expr, NOW, TZ)
    assert item == expected
    schedule_from_dict(item, NOW)  # and the core takes it


@pytest.mark.parametrize(("kind", "expr"), [
    (2, "h(0)"), (2, "x(5)"), (3, "d('2026-01-01 00:00:00',1)"), (2, "d('2026-13-01 00:00:00',1)"),
    (3, "y(999999999)"),
])
def test_malformed_rates_and_delays_are_refused(kind: int, expr: str) -> None:
    with pytest.raises(InvalidField) as refused:
        expression_item(kind, expr, NOW, TZ, where="scheduleExpressionList[0].expression")
    assert refused.value.field == "scheduleExpressionList[0].expression"


def test_expression_changes_keep_ids_and_need_them_to_edit() -> None:
    changes = expression_changes({"scheduleExpressionList": [
        {"operatorMode": "1", "expressionId": "12", "expression": "0 0 2 * * ?"},
        {"operatorMode": 3, "expressionId": 4},
    ]}, NOW, TZ, adding=False)
    assert [(c.op, c.id) for c in changes] == [(Op.ADD, "12"), (Op.REMOVE, "4")]
    with pytest.raises(InvalidField) as refused:
        expression_changes({"scheduleExpressionList": [{"operatorMode": 2, "expression": "x"}]},
                           NOW, TZ, adding=False)
    assert refused.value.field == "scheduleExpressionList[0].expressionId"


def test_numbers_may_be_strings_and_lists_may_be_text() -> None:
    assert whole({"n": "42"}, "n") == 42 and whole({"n": 7.0}, "n") == 7
    assert whole({}, "n") is None
    bad: object
    for bad in (True, "4x", 1.5, [], 2**64):
        with pytest.raises(InvalidField):
            whole({"n": bad}, "n")
    assert id_list({"taskIds": "[3, 1, 3]"}, "taskIds", 10) == [3, 1]
    with pytest.raises(InvalidField) as refused:
        id_list({"taskIds": [1, "a"]}, "taskIds", 10)
    assert refused.value.field == "taskIds[1]"


def test_submit_fields_are_checked_and_jarvis_spellings_accepted() -> None:
    fields = job_fields({"jobName": "n", "jobType": "Hive", "content": "select 1",
                         "departmentId": 12, "bizGroups": "1, 2", "isTemp": "1"},
                        NOW, TZ, adding=True)
    assert (fields.job_type, fields.department, fields.biz_groups, fields.is_temp) == (
        "hive", "12", ",1,2,", True)
    with pytest.raises(InvalidField) as refused:
        job_fields({"jobName": "n", "jobType": "shell", "content": "x", "bizGroups": "a,b"},
                   NOW, TZ, adding=True)
    assert refused.value.field == "bizGroups"


def test_every_run_state_has_a_task_status() -> None:
    assert set(TASK_STATUS) == set(RunState)
    assert TASK_STATUS[RunState.EXPIRED] is TaskStatus.REMOVED
