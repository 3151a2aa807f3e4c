"""The delay-job dialect, driven by the examples of its own document (seed 000).

The document's curl bodies are sent verbatim; only the callback endpoint is swapped for the
test receiver's. Its triggerTime 1666621588 (2022-10-24) is in the past, so those jobs fire at
once. Tests that only check answers share one node (`shared`) to stay fast.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from cronwheel.api.dialects.delayjob_jobs import dialect_problem
from cronwheel.domain.cron import CronSchedule
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.jobs import JobSpec, check_fires
from cronwheel.domain.targets import HttpTarget
from cronwheel.domain.time import parse_instant
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server

SUBMIT = "/api/v1/submit/job"
SUBMIT_MANY = "/api/v1/submit/jobs"
PAUSE = "/api/v1/pause/job"
RESUME = "/api/v1/resume/job"
CANCEL = "/api/v1/cancel/job"
JSON_TYPE = {"Content-Type": "application/json"}
OK = {"code": "ok", "message": "success"}
NAMESPACE = "delayjob"
DOC_ENDPOINT = "http://localhost:9092/callback"
NOWHERE = "http://127.0.0.1:9/callback"  # discard port: nothing answers
FAR = 4_000_000_000  # 2096: never fires during a test

# -- the document's request bodies, verbatim ------------------------------------------------------

DOC_SUBMIT = """{
      "outJobNo":"job_no_tutorial",
      "triggerTime":1666621588,
      "callbackProtocol":"HTTP",
      "callbackEndpoint":"http://localhost:9092/callback",
      "jobInfo":"I am a delay job.",
      "type":5
    }"""

DOC_BATCH = """[
      {
        "outJobNo":"job_no_tutorial1",
        "triggerTime":1666621588,
        "callbackProtocol":"HTTP",
        "callbackEndpoint":"http://localhost:9092/callback",
        "jobInfo":"I am a delay job.",
        "type":5
      },
      {
        "outJobNo":"job_no_tutorial2",
        "triggerTime":1666621589,
        "callbackProtocol":"HTTP",
        "callbackEndpoint":"http://localhost:9092/callback",
        "jobInfo":"I am a delay job too.",
        "type":5
      }
    ]"""

DOC_JOB_REF = b"""{
      "outJobNo":"job_no_tutorial"
    }"""  # the body of the pause, resume and cancel examples


def to_receiver(doc_body: str, receiver: HttpReceiver) -> bytes:
    return doc_body.replace(DOC_ENDPOINT, receiver.url).encode()


def job(**changes: Any) -> dict[str, Any]:
    """A valid job that never fires during a test, with `changes` applied."""
    body: dict[str, Any] = {
        "outJobNo": "job_no_tutorial",
        "type": 5,
        "triggerTime": FAR,
        "callbackProtocol": "HTTP",
        "callbackEndpoint": NOWHERE,
        "jobInfo": "I am a delay job.",
    }
    body.update(changes)
    return body


def without(name: str, **changes: Any) -> dict[str, Any]:
    body = job(**changes)
    del body[name]
    return body


async def post(server: RunningServer, path: str, body: bytes | Any) -> httpx.Response:
    """Send bytes as they are, anything else as JSON."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await server.client.post(path, content=content, headers=JSON_TYPE)


async def native_job(server: RunningServer, key: str) -> httpx.Response:
    return await server.client.get(f"/v1/jobs/{key}", params={"namespace": NAMESPACE})


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == OK


def assert_refused(response: httpx.Response, status: int, field: str, code: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] != "ok"
    if code is not None:
        assert body["code"] == code, body
    assert body["message"].startswith(f"{field}: "), body


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """One node for the tests that only look at answers; each uses its own outJobNo."""
    path: Path = tmp_path_factory.mktemp("delayjob") / "cronwheel.db"
    async with running_server(path) as running:
        yield running


module_loop = pytest.mark.asyncio(loop_scope="module")

# -- the document's examples ---------------------------------------------------------------------


async def test_document_submit_example_fires_at_once_and_reaches_the_callback(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    assert_ok(await post(server, SUBMIT, to_receiver(DOC_SUBMIT, receiver)))
    [got] = await receiver.wait_for(1)
    assert got.json() == {  # the delay-job callback body: exactly these three fields
        "outJobNo": "job_no_tutorial",
        "triggerTime": 1666621588000,  # milliseconds, as the upstream's code sends
        "jobInfo": "I am a delay job.",
    }
    runs = (await server.client.get(
        "/v1/jobs/job_no_tutorial/runs", params={"namespace": NAMESPACE}
    )).json()["runs"]
    assert [r["id"] for r in runs] == [got.headers["Idempotency-Key"]]
    assert got.headers["Cronwheel-Attempt"] == "1"
    assert got.headers["Cronwheel-Namespace"] == NAMESPACE
    assert got.headers["Cronwheel-Job-Key"] == "job_no_tutorial"
    stored = (await native_job(server, "job_no_tutorial")).json()
    assert stored["schedule"] == {"kind": "once", "at": "2022-10-24T14:26:28Z", "countdown": False}
    assert stored["target"]["url"] == receiver.url


async def test_type_and_job_info_are_optional_as_upstream(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    """No `type` (or null) is a normal job; no `jobInfo` reaches the receiver as null."""
    body = without("jobInfo", outJobNo="no_info", triggerTime=1666621588,
                   callbackEndpoint=receiver.url)
    del body["type"]
    assert_ok(await post(server, SUBMIT, body))
    assert_ok(await post(server, SUBMIT, body | {"type": None}))  # the same job
    assert_ok(await post(server, SUBMIT, body | {"type": 5, "jobInfo": None}))  # still the same
    [got] = await receiver.wait_for(1)
    assert got.json() == {"outJobNo": "no_info", "triggerTime": 1666621588000, "jobInfo": None}
    stored = (await native_job(server, "no_info")).json()
    assert stored["schedule"]["countdown"] is False


async def test_document_batch_example_delivers_both_jobs(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    assert_ok(await post(server, SUBMIT_MANY, to_receiver(DOC_BATCH, receiver)))
    got = await receiver.wait_for(2)
    delivered = {r.json()["outJobNo"]: r.json()["jobInfo"] for r in got}
    assert delivered == {
        "job_no_tutorial1": "I am a delay job.",
        "job_no_tutorial2": "I am a delay job too.",
    }
    assert len({r.headers["Idempotency-Key"] for r in got}) == 2


async def test_type_10_countdown_keeps_its_remaining_time_while_paused(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    trigger = time.time() + 1.5
    body = job(type=10, triggerTime=trigger, callbackEndpoint=receiver.url)
    assert_ok(await post(server, SUBMIT, body))
    assert_ok(await post(server, PAUSE, DOC_JOB_REF))
    paused = (await native_job(server, "job_no_tutorial")).json()
    assert paused["state"] == "paused"
    remaining = paused["remaining"]
    assert 1.0 < remaining <= 1.5

    await asyncio.sleep(trigger + 0.5 - time.time())  # well past the original triggerTime
    assert receiver.received == []

    resumed_at = time.time()
    assert_ok(await post(server, RESUME, DOC_JOB_REF))
    assert_ok(await post(server, SUBMIT, body))  # still the same job, though its time moved
    moved = parse_instant((await native_job(server, "job_no_tutorial")).json()["schedule"]["at"])
    [got] = await receiver.wait_for(1, timeout=remaining + 5)
    assert remaining - 0.25 <= got.at - resumed_at <= remaining + 3
    assert got.json() == {  # as upstream: the time it was due, moved by the pause, in ms
        "outJobNo": "job_no_tutorial",
        "triggerTime": (moved + 500) // 1000,
        "jobInfo": "I am a delay job.",
    }
    assert got.json()["triggerTime"] > round(trigger * 1000) + 400  # paused for > 0.5 s


async def test_pausing_a_type_5_job_is_refused(server: RunningServer) -> None:
    assert_ok(await post(server, SUBMIT, job(type=5)))
    response = await post(server, PAUSE, DOC_JOB_REF)
    assert_refused(response, 409, "outJobNo", "invalid_params")
    assert "only type 10" in response.json()["message"]
    assert (await native_job(server, "job_no_tutorial")).json()["state"] == "active"


async def test_cancel_before_the_trigger_time_means_no_callback(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    trigger = time.time() + 1.0
    assert_ok(await post(server, SUBMIT, job(type=10, triggerTime=trigger,
                                             callbackEndpoint=receiver.url)))
    assert_ok(await post(server, CANCEL, DOC_JOB_REF))
    await asyncio.sleep(trigger + 0.5 - time.time())
    assert receiver.received == []
    assert (await native_job(server, "job_no_tutorial")).json()["state"] == "cancelled"
    for path in (CANCEL, PAUSE, RESUME):
        assert_refused(await post(server, path, DOC_JOB_REF), 409, "outJobNo", "job_is_cancel")


async def test_a_fired_countdown_can_no_longer_be_paused(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    body = to_receiver(DOC_SUBMIT, receiver).replace(b'"type":5', b'"type":10')
    assert_ok(await post(server, SUBMIT, body))
    await receiver.wait_for(1)
    response = await post(server, PAUSE, DOC_JOB_REF)
    assert_refused(response, 409, "outJobNo", "job_is_triggered")
    assert "completed" in response.json()["message"]
    response = await post(server, CANCEL, DOC_JOB_REF)
    assert_refused(response, 409, "outJobNo", "cannot_cancel_job")


# -- answers only: one shared node ---------------------------------------------------------------


@module_loop
@pytest.mark.parametrize("path", [PAUSE, RESUME, CANCEL])
async def test_unknown_out_job_no_is_not_found(shared: RunningServer, path: str) -> None:
    response = await post(shared, path, {"outJobNo": "never_submitted"})
    assert_refused(response, 404, "outJobNo", "job_not_exist")


@module_loop
async def test_resubmitting_the_same_job_is_ok_and_a_different_one_conflicts(
    shared: RunningServer,
) -> None:
    first = job(outJobNo="idem_1")
    assert_ok(await post(shared, SUBMIT, first))
    assert_ok(await post(shared, SUBMIT, first))
    # The same job however it is spelled: key order, protocol case, fields we do not know.
    same = dict(reversed(list(first.items()))) | {"callbackProtocol": "http", "retries": 3}
    assert_ok(await post(shared, SUBMIT, same))

    response = await post(shared, SUBMIT, job(outJobNo="idem_1", jobInfo="changed"))
    assert_refused(response, 409, "outJobNo", "out_job_no_is_exist")
    stored = (await native_job(shared, "idem_1")).json()
    assert stored["payload"]["jobInfo"] == "I am a delay job."

    batch = [job(outJobNo="idem_fresh"), job(outJobNo="idem_1", type=10)]
    assert_refused(await post(shared, SUBMIT_MANY, batch), 409, "[1].outJobNo",
                   "out_job_no_is_exist")
    assert (await native_job(shared, "idem_fresh")).status_code == 404

    assert_ok(await post(shared, SUBMIT_MANY, [job(outJobNo="idem_fresh"), first]))
    assert (await native_job(shared, "idem_fresh")).status_code == 200


@module_loop
async def test_a_batch_with_one_bad_item_writes_nothing(shared: RunningServer) -> None:
    batch = [job(outJobNo="batch_good"), job(outJobNo="batch_bad", triggerTime="abc")]
    assert_refused(await post(shared, SUBMIT_MANY, batch), 400, "[1].triggerTime",
                   "invalid_params")
    for key in ("batch_good", "batch_bad"):
        assert (await native_job(shared, key)).status_code == 404


async def test_the_services_limits_answer_in_the_envelope(tmp_path: Path) -> None:
    """The service's batch limit answers in the dialect's words; jobInfo's own cap (256
    characters, as upstream) keeps a delay job's callback body under any payload limit."""
    async with running_server(tmp_path / "limited.db", max_batch=2) as limited:
        big = job(outJobNo="big", jobInfo="x" * 300)
        response = await post(limited, SUBMIT, big)
        assert_refused(response, 400, "jobInfo", "invalid_params")
        assert "at most 256 characters" in response.json()["message"]
        batch = [job(outJobNo="small"), big]
        assert_refused(await post(limited, SUBMIT_MANY, batch), 400, "[1].jobInfo",
                       "invalid_params")
        three = [job(outJobNo=f"n{i}") for i in range(3)]
        assert_refused(await post(limited, SUBMIT_MANY, three), 400, "body", "invalid_params")
        assert_refused(await post(limited, SUBMIT_MANY, []), 400, "body", "invalid_params")
        listed = (await limited.client.get("/v1/jobs", params={"namespace": NAMESPACE})).json()
        assert listed["jobs"] == []


def test_a_schedule_that_can_never_fire_would_name_trigger_time() -> None:
    """A delay job always fires (a past triggerTime at once: misfire fire_once), so the
    service's never-firing refusal cannot come from this API; were it to, it names
    triggerTime, as the native API names schedule."""
    never = JobSpec(NAMESPACE, "k", CronSchedule("0 0 0 1 1 ? 2020", "quartz"),
                    HttpTarget(NOWHERE))
    with pytest.raises(InvalidField) as refused:
        check_fires(never, 1_900_000_000_000_000)
    field, problem = dialect_problem(refused.value)
    assert field == "triggerTime" and "never fire" in problem


@module_loop
@pytest.mark.parametrize(
    ("protocol", "endpoint", "target"),
    [
        ("HTTP", "https://example.com/hook", {"kind": "http", "url": "https://example.com/hook"}),
        ("grpc", "127.0.0.1:50051", {"kind": "grpc", "address": "127.0.0.1:50051"}),
        ("Grpc", "grpc://[::1]:50051", {"kind": "grpc", "address": "[::1]:50051"}),
        ("KAFKA", "127.0.0.1:9092/orders",
         {"kind": "kafka", "bootstrap": ["127.0.0.1:9092"], "topic": "orders"}),
        ("kafka", "kafka://b1:9092,b2:9092/delay.jobs",
         {"kind": "kafka", "bootstrap": ["b1:9092", "b2:9092"], "topic": "delay.jobs"}),
    ],
)
async def test_callback_endpoints_become_targets(
    shared: RunningServer, protocol: str, endpoint: str, target: dict[str, Any]
) -> None:
    key = f"target_{protocol}_{len(endpoint)}"
    body = job(outJobNo=key, callbackProtocol=protocol, callbackEndpoint=endpoint)
    assert_ok(await post(shared, SUBMIT, body))
    stored = (await native_job(shared, key)).json()
    assert stored["target"].items() >= target.items()


BAD_INPUT: list[tuple[str, Any, str, str]] = [
    # (path, body: bytes as they are or a value sent as JSON, the field named, case id)
    (SUBMIT, b'{"outJobNo":', "body", "malformed JSON"),
    (SUBMIT, b"", "body", "empty body"),
    (SUBMIT, b"\xff\xfe", "body", "not UTF-8"),
    (SUBMIT, "a job", "body", "a string body"),
    (SUBMIT, 42, "body", "a number body"),
    (SUBMIT, None, "body", "a null body"),
    (SUBMIT, [job()], "body", "an array for single submit"),
    (SUBMIT, without("outJobNo"), "outJobNo", "outJobNo missing"),
    (SUBMIT, job(outJobNo=""), "outJobNo", "outJobNo empty"),
    (SUBMIT, job(outJobNo="x" * 33), "outJobNo", "outJobNo of 33 characters"),
    (SUBMIT, job(outJobNo=123), "outJobNo", "outJobNo a number"),
    (SUBMIT, job(outJobNo="a\nb"), "outJobNo", "outJobNo with a control character"),
    (SUBMIT, job(type=7), "type", "type 7"),
    (SUBMIT, job(type="5"), "type", "type a string"),
    (SUBMIT, job(type=True), "type", "type a boolean"),
    (SUBMIT, job(type=5.0), "type", "type a float"),
    (SUBMIT, without("triggerTime"), "triggerTime", "triggerTime missing"),
    (SUBMIT, job(triggerTime="abc"), "triggerTime", "triggerTime a string"),
    (SUBMIT, job(triggerTime="1666621588"), "triggerTime", "triggerTime a numeric string"),
    (SUBMIT, job(triggerTime=True), "triggerTime", "triggerTime a boolean"),
    (SUBMIT, job(triggerTime=-1), "triggerTime", "triggerTime negative"),
    (SUBMIT, job(triggerTime=1e20), "triggerTime", "triggerTime beyond year 9999"),
    (SUBMIT, job(triggerTime=[1]), "triggerTime", "triggerTime an array"),
    (SUBMIT, without("callbackProtocol"), "callbackProtocol", "protocol missing"),
    (SUBMIT, job(callbackProtocol="SMTP"), "callbackProtocol", "protocol unknown"),
    (SUBMIT, job(callbackProtocol=""), "callbackProtocol", "protocol empty"),
    (SUBMIT, job(callbackProtocol=1), "callbackProtocol", "protocol a number"),
    (SUBMIT, without("callbackEndpoint"), "callbackEndpoint", "endpoint missing"),
    (SUBMIT, job(callbackEndpoint=5), "callbackEndpoint", "endpoint a number"),
    (SUBMIT, job(callbackEndpoint=""), "callbackEndpoint", "HTTP endpoint empty"),
    (SUBMIT, job(callbackEndpoint="ftp://example.com/cb"), "callbackEndpoint",
     "HTTP endpoint not http(s)"),
    (SUBMIT, job(callbackEndpoint="localhost:9092"), "callbackEndpoint",
     "HTTP endpoint without a scheme"),
    (SUBMIT, job(callbackProtocol="GRPC", callbackEndpoint="localhost"), "callbackEndpoint",
     "GRPC endpoint without a port"),
    (SUBMIT, job(callbackProtocol="GRPC", callbackEndpoint="http://localhost:50051"),
     "callbackEndpoint", "GRPC endpoint a URL"),
    (SUBMIT, job(callbackProtocol="GRPC", callbackEndpoint="localhost:99999"),
     "callbackEndpoint", "GRPC endpoint port out of range"),
    (SUBMIT, job(callbackProtocol="KAFKA", callbackEndpoint="localhost:9092"),
     "callbackEndpoint", "KAFKA endpoint without a topic"),
    (SUBMIT, job(callbackProtocol="KAFKA", callbackEndpoint="localhost:9092/"),
     "callbackEndpoint", "KAFKA endpoint with an empty topic"),
    (SUBMIT, job(callbackProtocol="KAFKA", callbackEndpoint="localhost/orders"),
     "callbackEndpoint", "KAFKA broker without a port"),
    (SUBMIT, job(callbackProtocol="KAFKA", callbackEndpoint="localhost:9092/bad topic"),
     "callbackEndpoint", "KAFKA topic with a space"),
    (SUBMIT, job(jobInfo=5), "jobInfo", "jobInfo a number"),
    (SUBMIT, job(jobInfo={"a": 1}), "jobInfo", "jobInfo an object"),
    (SUBMIT, job(jobInfo="x" * 257), "jobInfo", "jobInfo of 257 characters"),
    (SUBMIT, job(callbackProtocol="LOG", callbackEndpoint=""), "callbackEndpoint",
     "LOG endpoint empty"),
    (SUBMIT, job(callbackProtocol="KAFKA", callbackEndpoint="a_topic_for_notify"),
     "callbackEndpoint", "KAFKA bare topic with no brokers configured"),
    (SUBMIT_MANY, b"[", "body", "batch malformed JSON"),
    (SUBMIT_MANY, [], "body", "empty batch"),
    (SUBMIT_MANY, job(), "body", "a single job for batch submit"),
    (SUBMIT_MANY, [job(outJobNo="b_1"), 5], "[1]", "batch item not an object"),
    (SUBMIT_MANY, [job(outJobNo="b_2"), without("outJobNo")], "[1].outJobNo",
     "batch item without outJobNo"),
    (SUBMIT_MANY, [job(outJobNo="b_3"), job(outJobNo="b_3", jobInfo="again")], "[1].outJobNo",
     "outJobNo twice in a batch"),
    (SUBMIT_MANY, [job(outJobNo="b_4"), job(outJobNo="b_5", type="5")], "[1].type",
     "batch item with type a string"),
    (SUBMIT_MANY, [job(outJobNo="b_6", callbackProtocol="KAFKA")], "[0].callbackEndpoint",
     "batch item with a bad endpoint"),
    *[
        case
        for path in (PAUSE, RESUME, CANCEL)
        for case in [
            (path, b"{", "body", f"{path} malformed JSON"),
            (path, [{"outJobNo": "job_no_tutorial"}], "body", f"{path} array body"),
            (path, {}, "outJobNo", f"{path} outJobNo missing"),
            (path, {"outJobNo": 5}, "outJobNo", f"{path} outJobNo a number"),
            (path, {"outJobNo": "x" * 33}, "outJobNo", f"{path} outJobNo too long"),
        ]
    ],
]


@module_loop
@pytest.mark.parametrize(("path", "body", "field"), [c[:3] for c in BAD_INPUT],
                         ids=[c[3] for c in BAD_INPUT])
async def test_bad_input_is_a_4xx_naming_the_field(
    shared: RunningServer, path: str, body: Any, field: str
) -> None:
    assert_refused(await post(shared, path, body), 400, field, "invalid_params")


# -- fuzz ----------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)
FIELDS = {
    "outJobNo": st.text(max_size=40),
    "type": st.sampled_from([5, 10, 7, 0, -5, 5.0]),
    "triggerTime": st.integers() | st.floats(),
    "callbackProtocol": st.sampled_from(["HTTP", "grpc", "Kafka", "smtp", ""]),
    # Valid endpoints point at closed ports, so whatever gets created fails fast.
    "callbackEndpoint": st.sampled_from(
        [NOWHERE, "127.0.0.1:9", "grpc://127.0.0.1:9", "kafka://", "127.0.0.1:9/", ""]
    ) | st.text(max_size=30),
    "jobInfo": st.text(max_size=40),
}
JOBS = st.fixed_dictionaries(
    {}, optional={name: strategy | JSON_VALUES for name, strategy in FIELDS.items()}
)
BODIES = st.one_of(
    st.binary(max_size=60),
    (JSON_VALUES | JOBS | st.lists(JOBS, max_size=3)).map(lambda v: json.dumps(v).encode()),
)


@module_loop
@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from([SUBMIT, SUBMIT, SUBMIT, SUBMIT_MANY, PAUSE, RESUME, CANCEL]),
       body=BODIES)
async def test_random_bodies_never_get_a_5xx_or_another_shape(
    shared: RunningServer, path: str, body: bytes
) -> None:
    response = await post(shared, path, body)
    assert response.status_code < 500, response.text
    answer = response.json()
    assert set(answer) == {"code", "message"}, answer
    assert isinstance(answer["code"], str) and isinstance(answer["message"], str)
    if response.status_code == 200:
        assert answer == OK
    else:
        assert 400 <= response.status_code < 500 and answer["code"] != "ok"


async def test_wrong_method_answers_in_the_dialect_envelope(server: RunningServer) -> None:
    resp = await server.client.get("/api/v1/submit/job")
    assert resp.status_code == 405
    assert resp.json() == {"code": "method_not_allowed", "message": "Method Not Allowed"}
    native = await server.client.delete("/v1/jobs")
    assert native.status_code == 405 and native.json()["error"]["code"] == "method_not_allowed"
