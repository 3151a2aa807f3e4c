"""The dispatchserver dialect, driven through every endpoint and field of its document (seed 001).

Bodies follow the document: recallConfig and taskConfig are strings holding JSON (and, as
newer clients send them, plain JSON objects), or form fields whose values are JSON strings.
Dates are checked against Asia/Shanghai (UTC+8), the default dispatch zone. Tests that only
check answers share one node (`shared`) to stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.receivers import HttpReceiver, Received
from tests.servers import RunningServer, running_server

ADD = "/dispatchserver/add.do"
PAUSE = "/dispatchserver/pause.do"
RESUME = "/dispatchserver/resumeTask.do"
DELETE = "/dispatchserver/delete.do"
TRIGGER = "/dispatchserver/trigger.do"
TRIGGER_SPACED = "/dispatchserver/%20trigger.do"  # the document's '/dispatchserver/ trigger.do'
FORM = "application/x-www-form-urlencoded"
OK = {"success": True, "error": None, "resultValue": None}
GROUP = "orders"
NAMESPACE = "dispatch:orders"
SHANGHAI = timezone(timedelta(hours=8))
NOWHERE = "http://127.0.0.1:9/callback"  # discard port: nothing answers
DATA = '{"orderId": 42, "note": "补单"}'
FAR_CRON = "0 0 0 1 1 ? 2099"  # 2099-01-01 00:00 Shanghai: never fires during a test
EVERY_SECOND = "* * * * * ?"

# -- request bodies ------------------------------------------------------------------------------


def recall(url: str = NOWHERE, data: Any = DATA, **changes: Any) -> dict[str, Any]:
    """recallConfig for an HTTP callback; option is a JSON string, as the document has it."""
    return {"recallType": "HTTP", "option": json.dumps({"url": url}), "data": data} | changes


def socket_recall(port: Any, data: Any = DATA, **option: Any) -> dict[str, Any]:
    text = json.dumps({"host": "127.0.0.1", "port": port, **option})
    return {"recallType": "SOCKET", "option": text, "data": data}


def cron_task(code: str, expr: str = FAR_CRON, **changes: Any) -> dict[str, Any]:
    return {"triggerType": "CronTrigger", "jobCode": code, "groupCode": GROUP, "priority": 5,
            "endDate": None, "cronExpress": expr} | changes


def time_config(interval: Any = 200, interval_type: Any = "MILLISECOND", repeat: Any = 3,
                forever: Any = False) -> dict[str, Any]:
    return {"interval": interval, "intervalType": interval_type, "isForever": forever,
            "repeatCount": repeat}


def simple_task(code: str, config: dict[str, Any] | str | None = None,
                **changes: Any) -> dict[str, Any]:
    """A SimpleTrigger task; timeConfig is a JSON string unless given otherwise."""
    config = time_config() if config is None else config
    return {"triggerType": "SimpleTrigger", "jobCode": code, "groupCode": GROUP, "priority": 5,
            "startDate": None, "endDate": None,
            "timeConfig": config if isinstance(config, str) else json.dumps(config)} | changes


def add_body(recall_config: Any, task_config: Any, replace: Any = False,
             as_strings: bool = True) -> dict[str, Any]:
    """The add.do fields: the two configs as JSON strings (the document's String) or objects."""
    def encode(value: Any) -> Any:
        return json.dumps(value) if as_strings and isinstance(value, dict) else value

    return {"recallConfig": encode(recall_config), "taskConfig": encode(task_config),
            "replace": replace}


def ref(code: str, group: str = GROUP) -> dict[str, str]:
    return {"jobName": code, "groupName": group}


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != name}


def ms(epoch: float) -> int:
    return round(epoch * 1000)


def wall(epoch: float) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Shanghai, as a Java SimpleDateFormat would print it."""
    return datetime.fromtimestamp(epoch, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def scheduled(got: Received) -> datetime:
    return datetime.fromisoformat(got.headers["Cronwheel-Scheduled-At"])


# -- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    body: bytes
    content_type: str


def form(fields: dict[str, Any]) -> Raw:
    return Raw(urlencode(fields).encode(), FORM)


async def post(server: RunningServer, path: str, body: Any) -> httpx.Response:
    """Raw as it is, bytes as JSON-typed bytes, anything else as JSON."""
    if isinstance(body, Raw):
        content, ctype = body.body, body.content_type
    else:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        ctype = "application/json"
    return await server.client.post(path, content=content, headers={"Content-Type": ctype})


async def native_job(server: RunningServer, code: str, group: str = GROUP) -> dict[str, Any]:
    response = await server.client.get(f"/v1/jobs/{code}",
                                       params={"namespace": f"dispatch:{group}"})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def runs_of(server: RunningServer, code: str) -> list[dict[str, Any]]:
    page = await server.client.get(f"/v1/jobs/{code}/runs", params={"namespace": NAMESPACE})
    runs: list[dict[str, Any]] = page.json()["runs"]
    return runs


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == OK


def assert_refused(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "error", "resultValue"}, body
    assert body["success"] is False and body["resultValue"] is None, body
    error: str = body["error"]
    assert error.startswith(f"{field}: "), body
    return error


async def settle(receiver: HttpReceiver, quiet: float = 0.5) -> int:
    """The number of deliveries once none is still on its way, then `quiet` seconds later."""
    await asyncio.sleep(0.2)
    count = len(receiver.received)
    await asyncio.sleep(quiet)
    assert len(receiver.received) == count, "deliveries went on"
    return count


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """One node for the tests that only look at answers; each uses its own jobCode."""
    path: Path = tmp_path_factory.mktemp("dispatchserver") / "cronwheel.db"
    async with running_server(path) as running:
        yield running


module_loop = pytest.mark.asyncio(loop_scope="module")

# -- CronTrigger ----------------------------------------------------------------------------------


async def test_cron_every_second_delivers_data_as_json_on_whole_seconds(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    task = cron_task("tick", EVERY_SECOND, priority=7)
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    got = await receiver.wait_for(3, timeout=6)
    assert [r.json() for r in got] == [{"orderId": 42, "note": "补单"}] * len(got)
    times = [scheduled(r) for r in got]
    assert all(t.microsecond == 0 for t in times)
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(times))
    assert all(-0.05 <= r.at - scheduled(r).timestamp() < 0.75 for r in got)  # lead: 20 ms
    assert got[0].headers["Cronwheel-Namespace"] == NAMESPACE
    assert got[0].headers["Cronwheel-Job-Key"] == "tick"
    job = await native_job(server, "tick")
    assert job["schedule"] == {"kind": "cron", "expr": EVERY_SECOND, "tz": "Asia/Shanghai",
                               "syntax": "quartz", "start": None, "end": None}
    assert job["target"]["kind"] == "http" and job["target"]["url"] == receiver.url
    assert job["payload"] == {"orderId": 42, "note": "补单"}
    assert job["priority"] == 7


async def test_form_fields_with_json_string_values_make_the_same_task(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    body = add_body(recall(receiver.url), cron_task("formed", EVERY_SECOND), replace="false")
    assert_ok(await post(server, ADD, form(body)))
    got = await receiver.wait_for(2, timeout=5)
    assert got[0].json() == {"orderId": 42, "note": "补单"}
    assert all(scheduled(r).microsecond == 0 for r in got)
    # The same definition as a JSON object (configs as objects, option as an object) is the
    # same task: idempotent, even with replace=false.
    as_objects = add_body(recall(receiver.url, option={"url": receiver.url}),
                          cron_task("formed", EVERY_SECOND), as_strings=False)
    assert_ok(await post(server, ADD, as_objects))
    assert_ok(await post(server, PAUSE, form(ref("formed"))))
    assert (await native_job(server, "formed"))["state"] == "paused"
    query = await server.client.post(f"{RESUME}?{urlencode(ref('formed'))}")
    assert_ok(query)  # parameters in the query string, as a servlet reads them
    assert (await native_job(server, "formed"))["state"] == "active"


async def test_end_date_as_wall_clock_text_stops_a_cron_task(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    end = int(time.time()) + 2
    task = cron_task("ending", EVERY_SECOND, endDate=wall(end))
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    deadline = time.monotonic() + end + 5 - time.time()
    while not any(scheduled(r).timestamp() == end for r in receiver.received):
        assert time.monotonic() < deadline, "the occurrence at endDate never came"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.1)  # the next second has passed: nothing after endDate
    assert all(scheduled(r).timestamp() <= end for r in receiver.received)
    job = await native_job(server, "ending")
    assert job["state"] == "completed"
    assert job["schedule"]["end"] == datetime.fromtimestamp(end, UTC).isoformat()[:19] + "Z"


# -- SimpleTrigger --------------------------------------------------------------------------------


async def test_simple_trigger_repeat_count_3_executes_3_times_then_completes(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    task = simple_task("thrice", time_config(200, "MILLISECOND", repeat=3))
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    got = await receiver.wait_for(3)
    assert await settle(receiver) == 3
    times = [scheduled(r) for r in got]
    assert [b - a for a, b in itertools.pairwise(times)] == [
        timedelta(milliseconds=200)] * 2
    job = await native_job(server, "thrice")
    assert job["state"] == "completed" and job["next_fire_at"] is None
    assert job["schedule"]["repeat"] == 2  # Quartz counting: repeats after the first


async def test_is_forever_keeps_firing_and_null_interval_type_is_milliseconds(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    config = time_config(100, "NULL", repeat=0, forever=True)  # repeatCount ignored
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), simple_task("ever", config))))
    await receiver.wait_for(6)
    job = await native_job(server, "ever")
    assert job["state"] == "active"
    assert job["schedule"]["repeat"] is None
    assert (job["schedule"]["interval"], job["schedule"]["unit"]) == (100, "millisecond")


async def test_start_date_in_the_future_fires_nothing_before_it(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    start = int(time.time()) + 2  # whole seconds: the text form has no fraction
    task = simple_task("later", time_config(100, "MILLISECOND", repeat=2), startDate=wall(start))
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    await asyncio.sleep(start - 0.3 - time.time())
    assert receiver.received == []
    got = await receiver.wait_for(2, timeout=5)
    assert scheduled(got[0]).timestamp() == start
    assert got[0].at >= start - 0.05


async def test_end_date_as_epoch_ms_ends_a_forever_task(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    start = time.time() + 0.3
    config = time_config(100, "MILLISECOND", forever=True)
    task = simple_task("bounded", config, startDate=ms(start), endDate=str(ms(start + 0.5)))
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    await receiver.wait_for(6)
    assert await settle(receiver) == 6  # start, +100, ..., +500 (endDate is inclusive)
    assert (await native_job(server, "bounded"))["state"] == "completed"


# -- SOCKET ---------------------------------------------------------------------------------------


@dataclass
class LineServer:
    """An old-style SOCKET receiver: reads one line per connection, answers `ack` if set."""

    ack: bytes | None = None
    lines: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.lines.append(await reader.readline())
        if self.ack is not None:
            writer.write(self.ack)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            assert time.monotonic() < deadline, f"expected {count} lines, got {len(self.lines)}"
            await asyncio.sleep(0.02)
        return self.lines


@contextlib.asynccontextmanager
async def line_server(ack: bytes | None = None) -> AsyncIterator[LineServer]:
    receiver = LineServer(ack)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


async def wait_run_state(server: RunningServer, code: str, state: str) -> dict[str, Any]:
    for _ in range(100):
        runs = await runs_of(server, code)
        if runs and runs[0]["state"] == state:
            return runs[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"run of {code} never reached {state}: {runs}")


async def test_socket_recall_sends_one_json_line_without_waiting_for_an_ack(
    server: RunningServer,
) -> None:
    async with line_server() as receiver:
        task = simple_task("sock", time_config(1, "SECOND", repeat=1))
        body = add_body(socket_recall(str(receiver.port)), task)  # port as numeric text
        assert_ok(await post(server, ADD, body))
        [line] = await receiver.wait_for(1)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        frame = json.loads(line)
        assert frame["payload"] == {"orderId": 42, "note": "补单"}
        assert frame["namespace"] == NAMESPACE and frame["job_key"] == "sock"
        assert frame["attempt"] == 1 and frame["run_id"] == frame["idempotency_key"]
        run = await wait_run_state(server, "sock", "succeeded")
        assert run["id"] == frame["run_id"] and run["attempts"] == 1
    target = (await native_job(server, "sock"))["target"]
    assert target | {"timeout": 0} == {"kind": "tcp", "host": "127.0.0.1",
                                       "port": receiver.port, "ack": False, "timeout": 0}


async def test_socket_recall_with_ack_true_waits_for_ok(server: RunningServer) -> None:
    async with line_server(ack=b"OK\n") as receiver:
        task = simple_task("acked", time_config(1, "SECOND", repeat=1))
        body = add_body(socket_recall(receiver.port, data="not json", ack=True), task)
        assert_ok(await post(server, ADD, body))
        [line] = await receiver.wait_for(1)
        assert json.loads(line)["payload"] == "not json"
        await wait_run_state(server, "acked", "succeeded")
    assert (await native_job(server, "acked"))["target"]["ack"] is True


# -- pause, resume, delete, trigger --------------------------------------------------------------


async def test_pause_stops_deliveries_and_resume_task_restarts_them(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    task = simple_task("pausy", time_config(100, "MILLISECOND", forever=True))
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    await receiver.wait_for(2)
    assert_ok(await post(server, PAUSE, ref("pausy")))
    count = await settle(receiver)
    assert (await native_job(server, "pausy"))["state"] == "paused"
    error = assert_refused(await post(server, PAUSE, ref("pausy")), 409, "jobName")
    assert "only an active job can be paused; this one is paused" in error

    assert_ok(await post(server, RESUME, ref("pausy")))
    await receiver.wait_for(count + 3)
    assert (await native_job(server, "pausy"))["state"] == "active"
    error = assert_refused(await post(server, RESUME, ref("pausy")), 409, "jobName")
    assert "only a paused job can be resumed; this one is active" in error


async def test_delete_stops_for_good_and_the_task_is_then_unknown(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    task = simple_task("doomed", time_config(100, "MILLISECOND", forever=True))
    assert_ok(await post(server, ADD, add_body(recall(receiver.url), task)))
    await receiver.wait_for(2)
    assert_ok(await post(server, DELETE, form(ref("doomed"))))
    await settle(receiver, quiet=0.6)
    assert (await native_job(server, "doomed"))["state"] == "cancelled"
    for path in (PAUSE, RESUME, DELETE, TRIGGER):
        assert_refused(await post(server, path, ref("doomed")), 404, "jobName")


async def test_a_deleted_task_may_be_added_again_with_replace_false(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    body = add_body(recall(receiver.url),
                    simple_task("phoenix", time_config(100, "MILLISECOND", forever=True)))
    assert_ok(await post(server, ADD, body))
    await receiver.wait_for(1)
    assert_ok(await post(server, DELETE, ref("phoenix")))
    count = await settle(receiver)

    assert_ok(await post(server, ADD, body))  # the same body: the task lives again
    await receiver.wait_for(count + 2)
    assert (await native_job(server, "phoenix"))["state"] == "active"
    assert_ok(await post(server, ADD, body))  # and is idempotent again

    assert_ok(await post(server, DELETE, ref("phoenix")))
    other = add_body(recall(NOWHERE), simple_task("phoenix", time_config(7, "MINUTE", 2)))
    assert_ok(await post(server, ADD, other))  # a different body after delete: no conflict
    job = await native_job(server, "phoenix")
    assert job["state"] == "active" and job["schedule"]["unit"] == "minute"
    assert len(await runs_of(server, "phoenix")) >= count  # the history stays


async def test_trigger_runs_once_now_on_both_spellings_and_keeps_the_schedule(
    server: RunningServer, receiver: HttpReceiver
) -> None:
    body = add_body(recall(receiver.url, data="plain text, not JSON"), cron_task("poke"))
    assert_ok(await post(server, ADD, body))
    before = (await native_job(server, "poke"))["next_fire_at"]
    assert before == "2098-12-31T16:00:00Z"  # 2099-01-01 00:00 in Shanghai

    first = await post(server, TRIGGER, ref("poke"))
    assert first.status_code == 200 and first.json()["success"] is True
    run_id = first.json()["resultValue"]
    [got] = await receiver.wait_for(1)
    assert got.headers["Idempotency-Key"] == run_id
    assert got.json() == "plain text, not JSON"

    second = await post(server, TRIGGER_SPACED, form(ref("poke")))
    assert second.status_code == 200 and second.json()["error"] is None
    got2 = (await receiver.wait_for(2))[1]
    assert got2.headers["Idempotency-Key"] == second.json()["resultValue"] != run_id
    assert (await native_job(server, "poke"))["next_fire_at"] == before

    assert_ok(await post(server, PAUSE, ref("poke")))  # a paused task can still be run now
    third = await post(server, TRIGGER, ref("poke"))
    got3 = (await receiver.wait_for(3))[2]
    assert got3.headers["Idempotency-Key"] == third.json()["resultValue"]
    assert {r["kind"] for r in await runs_of(server, "poke")} == {"manual"}


# -- answers only: one shared node ---------------------------------------------------------------


@module_loop
@pytest.mark.parametrize("path", [PAUSE, RESUME, DELETE, TRIGGER, TRIGGER_SPACED])
async def test_unknown_task_is_a_404_envelope(shared: RunningServer, path: str) -> None:
    error = assert_refused(await post(shared, path, ref("never_added")), 404, "jobName")
    assert "'never_added'" in error and "'orders'" in error
    other_group = await post(shared, path, form(ref("never_added", "elsewhere")))
    assert_refused(other_group, 404, "jobName")


@module_loop
async def test_replace_false_conflicts_replace_true_overwrites_same_body_is_idempotent(
    shared: RunningServer,
) -> None:
    body = add_body(recall(), cron_task("same"))
    assert_ok(await post(shared, ADD, body))
    assert_ok(await post(shared, ADD, body))
    assert_ok(await post(shared, ADD, body | {"replace": True}))  # equal: nothing to replace
    # Equal after parsing: configs as objects, option as an object, data re-spaced, dates.
    respelled = add_body(recall(option={"url": NOWHERE}, data='{"note":"补单","orderId":42}'),
                         cron_task("same", priority="5"), replace="FALSE", as_strings=False)
    assert_ok(await post(shared, ADD, respelled))

    changed = add_body(recall(), cron_task("same", "0 30 9 ? * MON-FRI"))
    error = assert_refused(await post(shared, ADD, changed), 409, "taskConfig.jobCode")
    assert "replace=true" in error
    assert (await native_job(shared, "same"))["schedule"]["expr"] == FAR_CRON

    assert_ok(await post(shared, ADD, changed | {"replace": "true"}))
    job = await native_job(shared, "same")
    assert job["schedule"]["expr"] == "0 30 9 ? * MON-FRI"
    assert_ok(await post(shared, ADD, changed))  # now the stored definition


START_ISO = "2030-01-01T19:04:05Z"


@module_loop
@pytest.mark.parametrize(
    "start",
    ["2030-01-02 03:04:05", 1893524645000, "1893524645000", 1893524645000.0,
     "2030-01-02T03:04:05+08:00", "2030-01-01T19:04:05Z", "2030-01-02T03:04:05"],
)
async def test_start_date_forms_all_name_the_same_instant(
    shared: RunningServer, start: Any
) -> None:
    code = f"start_{type(start).__name__}_{start}".replace(" ", "_")
    task = simple_task(code, time_config(1, "HOUR", forever=True), startDate=start)
    assert_ok(await post(shared, ADD, add_body(recall(), task)))
    job = await native_job(shared, code)
    assert job["schedule"]["start"] == START_ISO
    assert job["next_fire_at"] == START_ISO


@module_loop
async def test_cron_start_and_end_dates_are_stored_as_instants(shared: RunningServer) -> None:
    task = cron_task("bounds", "0 0 12 * * ?", startDate="2030-01-02 03:04:05",
                     endDate=1924992000000)
    assert_ok(await post(shared, ADD, add_body(recall(), task)))
    job = await native_job(shared, "bounds")
    assert job["schedule"]["start"] == START_ISO
    assert job["schedule"]["end"] == "2031-01-01T00:00:00Z"
    assert job["next_fire_at"] == "2030-01-02T04:00:00Z"  # noon in Shanghai


@module_loop
@pytest.mark.parametrize(
    ("interval", "interval_type", "stored"),
    [
        (1500, "MILLISECOND", (1500, "millisecond")),
        (250, "NULL", (250, "millisecond")),
        (300, None, (300, "millisecond")),
        (90, "SECOND", (90, "second")),
        (120, "SECOND", (2, "minute")),
        (5, "second", (5, "second")),
        (3, "MINUTE", (3, "minute")),
        (2, "HOUR", (2, "hour")),
        ("1", "DAY", (1, "day")),
    ],
)
async def test_interval_types(
    shared: RunningServer, interval: Any, interval_type: Any, stored: tuple[int, str]
) -> None:
    code = f"unit_{interval}_{interval_type}"
    config = time_config(interval, interval_type, repeat=4)
    task = simple_task(code, config, startDate="2030-01-02 03:04:05")
    assert_ok(await post(shared, ADD, add_body(recall(), task)))
    schedule = (await native_job(shared, code))["schedule"]
    assert (schedule["interval"], schedule["unit"], schedule["repeat"]) == (*stored, 3)


@module_loop
@pytest.mark.parametrize(("given", "stored"), [(9, 9), ("7", 7), (-3, -3), (None, 5)])
async def test_priority_is_stored(shared: RunningServer, given: Any, stored: int) -> None:
    code = f"prio_{given}"
    assert_ok(await post(shared, ADD, add_body(recall(), cron_task(code, priority=given))))
    assert (await native_job(shared, code))["priority"] == stored


@module_loop
async def test_a_task_that_can_never_fire_is_refused_as_on_every_api(
    shared: RunningServer,
) -> None:
    """The service's one answer (the native API's 422 naming `schedule`), in this envelope:
    a 400 naming the field that makes it so."""
    ended = add_body(recall(), cron_task("dead_end", EVERY_SECOND,
                                         endDate="2020-01-01 00:00:00"))
    error = assert_refused(await post(shared, ADD, ended), 400, "taskConfig.endDate")
    assert error.endswith("the job would never fire")
    past = add_body(recall(), cron_task("dead_year", "0 0 0 1 1 ? 2020"))
    error = assert_refused(await post(shared, ADD, past), 400, "taskConfig.cronExpress")
    assert error.endswith("the job would never fire")
    for code in ("dead_end", "dead_year"):
        missing = await shared.client.get(f"/v1/jobs/{code}", params={"namespace": NAMESPACE})
        assert missing.status_code == 404


async def test_the_payload_limit_names_recall_data(tmp_path: Path) -> None:
    async with running_server(tmp_path / "limited.db", max_payload_bytes=1_024) as limited:
        big = add_body(recall(data="x" * 1_100), cron_task("big"))
        error = assert_refused(await post(limited, ADD, big), 400, "recallConfig.data")
        assert error == "recallConfig.data: is larger than 1024 bytes as JSON"
        assert_ok(await post(limited, ADD, add_body(recall(data="x" * 100), cron_task("big"))))


@module_loop
async def test_wrong_method_and_unknown_path_answer_in_the_envelope(shared: RunningServer) -> None:
    got = await shared.client.get(ADD)
    assert got.status_code == 405
    assert got.json() == {"success": False, "error": "method: Method Not Allowed",
                          "resultValue": None}
    missing = await shared.client.post("/dispatchserver/nothing.do")
    assert missing.status_code == 404 and missing.json()["success"] is False


def bad_add(**changes: Any) -> dict[str, Any]:
    """A valid add.do body with `changes` to its top level."""
    return add_body(recall(), cron_task("bad")) | changes


def with_recall(**changes: Any) -> dict[str, Any]:
    return add_body(recall(**changes), cron_task("bad"))


def with_cron(**changes: Any) -> dict[str, Any]:
    return add_body(recall(), cron_task("bad", **changes))


def with_simple(config: Any = None, **changes: Any) -> dict[str, Any]:
    return add_body(recall(), simple_task("bad", config, **changes))


def config_without(name: str, **changes: Any) -> dict[str, Any]:
    return without(time_config(**changes), name)


BAD_INPUT: list[tuple[str, Any, str, str]] = [
    # (path, body, the field named, case id)
    (ADD, b'{"recallConfig":', "body", "malformed JSON"),
    (ADD, b"[1, 2]", "body", "an array body"),
    (ADD, b'"text"', "body", "a string body"),
    (ADD, Raw(b"--x\r\n", "multipart/form-data; boundary=x"), "body", "multipart"),
    (ADD, b"", "body", "empty JSON body"),
    (ADD, Raw(b"", FORM), "recallConfig", "empty form"),
    (ADD, without(bad_add(), "recallConfig"), "recallConfig", "recallConfig missing"),
    (ADD, without(bad_add(), "taskConfig"), "taskConfig", "taskConfig missing"),
    (ADD, bad_add(recallConfig="{recallType:"), "recallConfig", "recallConfig invalid JSON"),
    (ADD, bad_add(taskConfig='{"jobCode": "x",}'), "taskConfig", "taskConfig invalid JSON"),
    (ADD, bad_add(recallConfig=5), "recallConfig", "recallConfig a number"),
    (ADD, bad_add(taskConfig='["CronTrigger"]'), "taskConfig", "taskConfig a JSON array"),
    (ADD, form(bad_add(taskConfig="{nope")), "taskConfig", "form taskConfig invalid JSON"),
    (ADD, without(bad_add(), "replace"), "replace", "replace missing"),
    (ADD, bad_add(replace="yes"), "replace", "replace yes"),
    (ADD, bad_add(replace=1), "replace", "replace a number"),
    (ADD, form(bad_add(replace="maybe")), "replace", "form replace maybe"),
    (ADD, with_recall(recallType=None), "recallConfig.recallType", "recallType missing"),
    (ADD, with_recall(recallType="FTP"), "recallConfig.recallType", "recallType unknown"),
    (ADD, with_recall(recallType=1), "recallConfig.recallType", "recallType a number"),
    (ADD, with_recall(option=None), "recallConfig.option", "option missing"),
    (ADD, with_recall(option="{url"), "recallConfig.option", "option invalid JSON"),
    (ADD, with_recall(option="{}"), "recallConfig.option.url", "HTTP option without url"),
    (ADD, with_recall(option={"url": "ftp://x/y"}), "recallConfig.option.url", "url not http"),
    (ADD, with_recall(option={"url": 5}), "recallConfig.option.url", "url a number"),
    (ADD, add_body(socket_recall(9) | {"option": '{"port": 9}'}, cron_task("bad")),
     "recallConfig.option.host", "SOCKET without host"),
    (ADD, add_body(socket_recall(9) | {"option": {"host": "bad host!", "port": 9}},
                   cron_task("bad")), "recallConfig.option.host", "SOCKET bad host"),
    (ADD, add_body(socket_recall("abc"), cron_task("bad")), "recallConfig.option.port",
     "SOCKET port not a number"),
    (ADD, add_body(socket_recall(70000), cron_task("bad")), "recallConfig.option.port",
     "SOCKET port out of range"),
    (ADD, add_body(socket_recall(None), cron_task("bad")), "recallConfig.option.port",
     "SOCKET without port"),
    (ADD, add_body(socket_recall(9, ack="sure"), cron_task("bad")), "recallConfig.option.ack",
     "SOCKET ack not a boolean"),
    (ADD, add_body(without(recall(), "data"), cron_task("bad")), "recallConfig.data",
     "data missing"),
    (ADD, with_recall(data="x" * 1_100_000), "recallConfig.data", "data too large"),
    (ADD, with_cron(triggerType=None), "taskConfig.triggerType", "triggerType missing"),
    (ADD, with_cron(triggerType="DailyTrigger"), "taskConfig.triggerType", "triggerType unknown"),
    (ADD, with_cron(jobCode=None), "taskConfig.jobCode", "jobCode missing"),
    (ADD, with_cron(jobCode=12), "taskConfig.jobCode", "jobCode a number"),
    (ADD, with_cron(jobCode="a\nb"), "taskConfig.jobCode", "jobCode with a control character"),
    (ADD, with_cron(jobCode="x" * 256), "taskConfig.jobCode", "jobCode too long"),
    (ADD, with_cron(groupCode=None), "taskConfig.groupCode", "groupCode missing"),
    (ADD, with_cron(groupCode="g" * 250), "taskConfig.groupCode", "groupCode too long"),
    (ADD, with_cron(priority="high"), "taskConfig.priority", "priority not a number"),
    (ADD, with_cron(priority=1.5), "taskConfig.priority", "priority a fraction"),
    (ADD, with_cron(priority=10**7), "taskConfig.priority", "priority out of range"),
    (ADD, with_cron(cronExpress=None), "taskConfig.cronExpress", "CronTrigger without cron"),
    (ADD, with_cron(cronExpress="0 0 25 * * ?"), "taskConfig.cronExpress", "cron hour 25"),
    (ADD, with_cron(cronExpress="* * * * * *"), "taskConfig.cronExpress", "cron without ?"),
    (ADD, with_cron(cronExpress="0 12 * * *"), "taskConfig.cronExpress", "unix cron"),
    (ADD, with_cron(cronExpress="every day"), "taskConfig.cronExpress", "cron words"),
    (ADD, with_cron(cronExpress="0 0 0 30 2 ?"), "taskConfig.cronExpress", "cron never fires"),
    (ADD, with_cron(cronExpress="0 0 0 1 1 ? 2020"), "taskConfig.cronExpress",
     "cron whose only year is past"),
    (ADD, with_cron(cronExpress=5), "taskConfig.cronExpress", "cron a number"),
    (ADD, with_cron(endDate="2020-01-01 00:00:00"), "taskConfig.endDate", "endDate in the past"),
    (ADD, with_cron(startDate="2031-01-01 00:00:00", endDate="2030-01-01 00:00:00"),
     "taskConfig.endDate", "endDate before startDate"),
    (ADD, with_simple(timeConfig=None), "taskConfig.timeConfig", "SimpleTrigger no timeConfig"),
    (ADD, with_simple("{interval"), "taskConfig.timeConfig", "timeConfig invalid JSON"),
    (ADD, with_simple(time_config(interval_type="WEEK")), "taskConfig.timeConfig.intervalType",
     "intervalType WEEK"),
    (ADD, with_simple(time_config(interval_type=3)), "taskConfig.timeConfig.intervalType",
     "intervalType a number"),
    (ADD, with_simple(time_config(interval=0)), "taskConfig.timeConfig.interval", "interval 0"),
    (ADD, with_simple(time_config(interval=-5)), "taskConfig.timeConfig.interval",
     "interval negative"),
    (ADD, with_simple(time_config(interval=5)), "taskConfig.timeConfig.interval",
     "interval 5 ms, under the minimum"),
    (ADD, with_simple(time_config(interval="abc")), "taskConfig.timeConfig.interval",
     "interval not a number"),
    (ADD, with_simple(time_config(interval=2**31, interval_type="DAY")),
     "taskConfig.timeConfig.interval", "interval beyond a Java int"),
    (ADD, with_simple(config_without("interval")), "taskConfig.timeConfig.interval",
     "interval missing"),
    (ADD, with_simple(time_config(repeat=0)), "taskConfig.timeConfig.repeatCount",
     "repeatCount 0 with isForever false"),
    (ADD, with_simple(time_config(repeat=-1)), "taskConfig.timeConfig.repeatCount",
     "repeatCount -1 with isForever false"),
    (ADD, with_simple(config_without("repeatCount")), "taskConfig.timeConfig.repeatCount",
     "repeatCount missing with isForever false"),
    (ADD, with_simple(time_config(forever="sometimes")), "taskConfig.timeConfig.isForever",
     "isForever not a boolean"),
    (ADD, with_simple(startDate="2026-13-01 00:00:00"), "taskConfig.startDate", "month 13"),
    (ADD, with_simple(startDate="tomorrow"), "taskConfig.startDate", "startDate words"),
    (ADD, with_simple(startDate=True), "taskConfig.startDate", "startDate a boolean"),
    (ADD, with_simple(startDate=[2030]), "taskConfig.startDate", "startDate an array"),
    (ADD, with_simple(endDate=-5), "taskConfig.endDate", "endDate negative ms"),
    (ADD, with_simple(endDate=1e300), "taskConfig.endDate", "endDate beyond year 9999"),
    (ADD, with_simple(startDate=ms(time.time() + 3600), endDate=ms(time.time() + 60)),
     "taskConfig.endDate", "simple endDate before startDate"),
    *[
        case
        for path in (PAUSE, RESUME, DELETE, TRIGGER, TRIGGER_SPACED)
        for case in [
            (path, {"groupName": GROUP}, "jobName", f"{path} without jobName"),
            (path, {"jobName": "x"}, "groupName", f"{path} without groupName"),
            (path, {"jobName": 5, "groupName": GROUP}, "jobName", f"{path} jobName a number"),
            (path, form({"groupName": GROUP}), "jobName", f"{path} form without jobName"),
            (path, b"{", "body", f"{path} malformed JSON"),
        ]
    ],
]


@module_loop
@pytest.mark.parametrize(("path", "body", "field"), [c[:3] for c in BAD_INPUT],
                         ids=[c[3] for c in BAD_INPUT])
async def test_bad_input_is_a_400_naming_the_field(
    shared: RunningServer, path: str, body: Any, field: str
) -> None:
    assert_refused(await post(shared, path, body), 400, field)


# -- fuzz ----------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=10,
)


def json_or_text(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A config as an object, or as the string holding it (the document's form)."""
    return strategy | strategy.map(json.dumps) | JSON_VALUES


DATES = st.integers() | st.floats() | st.sampled_from(
    ["2030-01-02 03:04:05", "2020-01-01 00:00:00", "1893524645000", "2030-02-30 00:00:00", ""]
) | st.text(max_size=20)
RECALLS = st.fixed_dictionaries({}, optional={
    "recallType": st.sampled_from(["HTTP", "SOCKET", "socket", "FTP", ""]) | JSON_VALUES,
    "option": json_or_text(st.fixed_dictionaries({}, optional={
        "url": st.sampled_from([NOWHERE, "ftp://x", ""]) | JSON_VALUES,
        "host": st.sampled_from(["127.0.0.1", "::1", "bad host"]) | JSON_VALUES,
        "port": st.sampled_from([9, "9", 0, 70000, "x"]) | JSON_VALUES,
        "ack": JSON_VALUES,
    })),
    "data": st.text(max_size=30) | JSON_VALUES,
})
TIME_CONFIGS = st.fixed_dictionaries({}, optional={
    "interval": st.integers() | st.sampled_from(["100", "x"]) | JSON_VALUES,
    "intervalType": st.sampled_from(["NULL", "MILLISECOND", "SECOND", "DAY", "WEEK"])
    | JSON_VALUES,
    "isForever": st.booleans() | st.sampled_from(["true", "no"]) | JSON_VALUES,
    "repeatCount": st.integers() | JSON_VALUES,
})
TASKS = st.fixed_dictionaries({}, optional={
    "triggerType": st.sampled_from(["CronTrigger", "SimpleTrigger", "cron", ""]) | JSON_VALUES,
    "jobCode": st.sampled_from(["fz1", "fz2", ""]) | st.text(max_size=20) | JSON_VALUES,
    "groupCode": st.sampled_from(["fuzz", "g" * 300]) | st.text(max_size=20) | JSON_VALUES,
    "priority": st.integers() | st.sampled_from(["5", "x"]) | JSON_VALUES,
    "startDate": DATES | JSON_VALUES,
    "endDate": DATES | JSON_VALUES,
    "cronExpress": st.sampled_from([EVERY_SECOND, FAR_CRON, "0 0 25 * * ?", "* * * * * *"])
    | st.text(max_size=30),
    "timeConfig": json_or_text(TIME_CONFIGS),
})
BODY_OBJECTS = st.fixed_dictionaries({}, optional={
    "recallConfig": json_or_text(RECALLS),
    "taskConfig": json_or_text(TASKS),
    "replace": st.booleans() | st.sampled_from(["true", "FALSE", "yes"]) | JSON_VALUES,
})
FORM_VALUES = st.text(max_size=40) | RECALLS.map(json.dumps) | TASKS.map(json.dumps)
FORM_BODIES = st.dictionaries(
    st.sampled_from(["recallConfig", "taskConfig", "replace"]) | st.text(max_size=8),
    FORM_VALUES, max_size=4,
).map(form)
BODIES = st.one_of(
    BODY_OBJECTS,
    FORM_BODIES,
    st.binary(max_size=60).map(lambda raw: Raw(raw, FORM)),
    st.binary(max_size=60),
)


@module_loop
@settings(max_examples=100, deadline=None)
@given(body=BODIES)
async def test_random_add_bodies_never_get_a_5xx_or_another_shape(
    shared: RunningServer, body: Any
) -> None:
    response = await post(shared, ADD, body)
    assert response.status_code < 500, response.text
    answer = response.json()
    assert set(answer) == {"success", "error", "resultValue"}, answer
    if response.status_code == 200:
        assert answer == OK
    else:
        assert 400 <= response.status_code < 500, answer
        assert answer["success"] is False and isinstance(answer["error"], str)
        assert ": " in answer["error"] and answer["resultValue"] is None
