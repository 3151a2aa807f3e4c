"""The pure parts of the delay-job callback contract: targets, answers, the gRPC request,
triggerTime's unit and the due time a resumed countdown moved to."""

from __future__ import annotations

from typing import Any

import pytest

from cronwheel.contracts import Delivery
from cronwheel.delivery.answers import refused_code
from cronwheel.delivery.delayjob_grpc import request_for
from cronwheel.delivery.http import read_code
from cronwheel.delivery.kafka import KafkaTransport
from cronwheel.domain.delayjob_body import UNIT_MS, UNIT_S, body_due, trigger_time
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.log_target import LogTarget
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.targets import (
    GrpcTarget,
    HttpTarget,
    KafkaTarget,
    Target,
    target_from_dict,
)
from cronwheel.domain.time import US_PER_S
from cronwheel.domain.worker_target import NO_JOB_TYPES

DUE = 1_666_621_588_000_000  # 2022-10-24T14:26:28Z


def parse_target(data: dict[str, Any]) -> Target:
    return target_from_dict(data, job_types=NO_JOB_TYPES)



@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ('{"code":"ok","message":"success"}', None),
        ('{"code":"OK"}', None),
        ('{"code":"Ok","msg":"x"}', None),
        ('{"code":"fail","message":"later"}', "fail"),
        ('{"code":""}', ""),
        ('{"code":"okay"}', "okay"),
        ("", None),  # a plain 2xx: a receiver that answers nothing still succeeds
        ("ok", None),
        ('{"code": 0}', None),  # no string code: not this contract's answer
        ('["fail"]', None),
        ('{"code":"fa', None),  # cut short
    ],
)
def test_only_a_code_other_than_ok_refuses(body: str, refused: str | None) -> None:
    assert refused_code(body) == refused


def test_a_refused_code_is_a_retryable_failure_and_ok_a_success() -> None:
    failed = read_code(200, '{"code":"fail"}')
    assert (failed.outcome, failed.retryable) == (AttemptOutcome.FAILURE, True)
    assert failed.error == "receiver answered code 'fail'"
    assert read_code(204, "").outcome is AttemptOutcome.SUCCESS


def test_targets_keep_their_contract_through_a_round_trip() -> None:
    http = parse_target({"kind": "http", "url": "http://a:1/cb", "success": "CODE_OK"})
    assert isinstance(http, HttpTarget) and http.success == "code_ok"
    grpc = parse_target({"kind": "grpc", "address": "a:1", "service": "delayjob"})
    assert isinstance(grpc, GrpcTarget) and grpc.service == "delayjob"
    log = parse_target({"kind": "log"})
    assert log == LogTarget("info")
    for target in (http, grpc, log):
        assert parse_target(target.to_dict()) == target


def test_a_kafka_target_may_ask_for_the_servers_brokers() -> None:
    target = parse_target({"kind": "kafka", "bootstrap": "server", "topic": "t"})
    assert target == KafkaTarget((), "t")
    assert target.to_dict()["bootstrap"] == "server"
    assert parse_target(target.to_dict()) == target


async def test_without_server_brokers_such_a_target_fails_for_good() -> None:
    transport = KafkaTransport()  # no default brokers
    target = KafkaTarget((), "t")
    result = await transport.deliver(delivery({"a": 1}, target))
    assert (result.outcome, result.retryable) == (AttemptOutcome.FAILURE, False)
    assert "CRONWHEEL_KAFKA_BOOTSTRAP" in (result.error or "")
    await transport.aclose()


def test_native_targets_look_as_before() -> None:
    assert "success" not in parse_target({"kind": "http", "url": "http://a/"}).to_dict()
    assert "service" not in parse_target({"kind": "grpc", "address": "a:1"}).to_dict()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "http", "url": "http://a/", "success": "3xx"}, "target.success"),
        ({"kind": "grpc", "address": "a:1", "service": "other"}, "target.service"),
        ({"kind": "log", "level": "error"}, "target.level"),
    ],
)
def test_unknown_options_are_refused_by_name(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_target(data)
    assert caught.value.field == field


def delivery(payload: Any, target: Target | None = None, due: int = DUE) -> Delivery:
    return Delivery(run_id="r1", attempt=1, job_id="j1", namespace="delayjob", key="k1",
                    scheduled_at=due, fired_at=due, target=target or GrpcTarget("a:1"),
                    payload=payload)


def test_the_grpc_request_carries_the_delay_jobs_own_values_and_milliseconds() -> None:
    request = request_for(delivery({"outJobNo": "k1", "triggerTime": 1666621588000,
                                    "jobInfo": "info"}))
    assert (request.outJobNo, request.triggerTime, request.jobInfo) == (
        "k1", 1666621588000, "info")
    empty = request_for(delivery({"outJobNo": "k1", "triggerTime": 1666621588000,
                                  "jobInfo": None}))
    assert empty.jobInfo == ""


def test_in_seconds_the_grpc_request_cuts_a_fraction() -> None:
    fraction = delivery({"outJobNo": "k1", "triggerTime": 1666621588.75, "jobInfo": "info"},
                        due=1_666_621_588_750_000)
    assert request_for(fraction, UNIT_S).triggerTime == 1666621588
    # submitted in seconds, it stays in seconds on a node now set to ms
    assert request_for(fraction, UNIT_MS).triggerTime == 1666621588


def test_the_grpc_request_carries_a_moved_countdowns_due_time() -> None:
    """Paused and resumed 30 s later, the run is due 30 s after the time submitted."""
    moved = delivery({"outJobNo": "k1", "triggerTime": 1666621588000, "jobInfo": "i"},
                     due=DUE + 30 * US_PER_S)
    assert request_for(moved).triggerTime == 1666621618000
    in_seconds = delivery({"outJobNo": "k1", "triggerTime": 1666621588, "jobInfo": "i"},
                          due=DUE + 30 * US_PER_S)
    assert request_for(in_seconds, UNIT_S).triggerTime == 1666621618


def test_a_native_job_sent_to_a_delay_job_receiver_gets_its_key_time_and_payload() -> None:
    request = request_for(delivery({"order": 7}))
    assert (request.outJobNo, request.triggerTime, request.jobInfo) == (
        "k1", 1666621588000, '{"order":7}')
    assert request_for(delivery({"order": 7}), UNIT_S).triggerTime == 1666621588


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), 2**70, "1666621588", True, None])
def test_a_trigger_time_int64_cannot_carry_falls_back_to_the_due_time(odd: Any) -> None:
    request = request_for(delivery({"outJobNo": "k1", "triggerTime": odd, "jobInfo": "i"}))
    assert request.triggerTime == 1666621588000


@pytest.mark.parametrize(
    ("at", "unit", "sent"),
    [
        (DUE, UNIT_MS, 1666621588000),
        (DUE + 250_000, UNIT_MS, 1666621588250),
        (DUE + 1_499, UNIT_MS, 1666621588001),  # rounded to the nearest millisecond
        (DUE + 1_500, UNIT_MS, 1666621588002),
        (DUE, UNIT_S, 1666621588),
        (DUE + 250_000, UNIT_S, 1666621588.25),
    ],
)
def test_trigger_time_in_each_unit(at: int, unit: str, sent: float) -> None:
    value = trigger_time(at, unit)
    assert value == sent and type(value) is type(sent)


def test_only_the_delay_job_body_gets_the_due_time() -> None:
    body = {"outJobNo": "k1", "triggerTime": 1666621588000, "jobInfo": None}
    later = DUE + 5 * US_PER_S
    assert body_due(body, later, UNIT_MS) == body | {"triggerTime": 1666621593000}
    assert body_due(body, DUE, UNIT_MS) is body
    sent = {"outJobNo": "k1", "triggerTime": 1666621588.0, "jobInfo": None}
    assert body_due(sent, DUE, UNIT_S) is sent  # the client's own number, when not moved
    # not moved, the unit chosen at submit stays, whatever the node's setting is now
    assert body_due(sent, DUE, UNIT_MS) is sent
    assert body_due(body, DUE, UNIT_S) is body
    assert body_due(sent, later, UNIT_MS)["triggerTime"] == 1666621593000
    native = {"triggerTime": 1, "order": 7}
    assert body_due(native, later, UNIT_MS) is native
    assert body_due([1, 2], later, UNIT_MS) == [1, 2]
    assert body_due(body | {"triggerTime": "1"}, later, UNIT_MS)["triggerTime"] == "1"
