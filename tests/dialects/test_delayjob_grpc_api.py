"""The delay-job management API over gRPC (delay.job.Job), as its clients call it.

A real grpc.aio client against `cronwheel serve`'s gRPC port on loopback; every rpc, with
duplicates, unknown jobs and bad fields. Each answer is checked against what the HTTP twin
did to the same job, through the native API.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from cronwheel.api.dialects.delayjob_grpc import DelayJobGrpcServer
from cronwheel.delivery.proto import delayjob_job_pb2 as pb
from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from tests.servers import RunningServer, running_server
from tests.support import free_port

FAR = 4_000_000_000  # 2096: never fires during a test
NOWHERE = "http://127.0.0.1:9/callback"


def create(key: str, **changes: Any) -> pb.CreateJobReq:
    fields: dict[str, Any] = {"outJobNo": key, "type": 5, "triggerTime": FAR,
                              "callbackProtocol": "HTTP", "callbackEndpoint": NOWHERE,
                              "jobInfo": "I am a delay job."}
    fields.update(changes)
    return pb.CreateJobReq(**fields)


def ref(key: str) -> pb.OperateJobReq:
    return pb.OperateJobReq(outJobNo=key)


def assert_resp(resp: pb.JobResp, code: str, field: str | None = None) -> None:
    assert resp.code == code, resp
    if field is None:
        assert resp.message == "success"
    else:
        assert resp.message.startswith(f"{field}: "), resp


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, pb_grpc.JobStub]]:
    port = free_port()
    async with (
        running_server(tmp_path / "cronwheel.db", delayjob_grpc_port=port) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield server, pb_grpc.JobStub(channel)  # type: ignore[no-untyped-call]


async def native(server: RunningServer, key: str) -> dict[str, Any]:
    response = await server.client.get(f"/v1/jobs/{key}", params={"namespace": "delayjob"})
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 else {}


async def test_submit_job_creates_the_same_job_as_http(
    api: tuple[RunningServer, pb_grpc.JobStub],
) -> None:
    server, stub = api
    assert_resp(await stub.submitJob(create("g_one")), "ok")
    stored = await native(server, "g_one")
    assert stored["payload"] == {"outJobNo": "g_one", "triggerTime": FAR * 1000,  # ms, sent
                                 "jobInfo": "I am a delay job."}
    assert stored["target"]["success"] == "code_ok"
    # The same job over HTTP is the same body: an equal re-submit is ok either way.
    http = await server.client.post("/api/v1/submit/job", json={
        "outJobNo": "g_one", "type": 5, "triggerTime": FAR, "callbackProtocol": "HTTP",
        "callbackEndpoint": NOWHERE, "jobInfo": "I am a delay job."})
    assert http.json()["code"] == "ok"


async def test_duplicates_unknown_jobs_and_bad_fields(
    api: tuple[RunningServer, pb_grpc.JobStub],
) -> None:
    _server, stub = api
    assert_resp(await stub.submitJob(create("g_dup")), "ok")
    assert_resp(await stub.submitJob(create("g_dup")), "ok")  # a retried submit
    assert_resp(await stub.submitJob(create("g_dup", jobInfo="other")), "out_job_no_is_exist",
                "outJobNo")
    for rpc in (stub.pauseJob, stub.resumeJob, stub.cancelJob):
        assert_resp(await rpc(ref("g_never")), "job_not_exist", "outJobNo")
    bad = [
        (create(""), "outJobNo"),
        (create("x" * 33), "outJobNo"),
        (create("g_bad", type=7), "type"),
        (create("g_bad", callbackProtocol="SMTP"), "callbackProtocol"),
        (create("g_bad", callbackProtocol=""), "callbackProtocol"),
        (create("g_bad", callbackEndpoint=""), "callbackEndpoint"),
        (create("g_bad", callbackProtocol="GRPC", callbackEndpoint="localhost"),
         "callbackEndpoint"),
        (create("g_bad", jobInfo="x" * 257), "jobInfo"),
        (create("g_bad", triggerTime=-1), "triggerTime"),
    ]
    for request, field in bad:
        assert_resp(await stub.submitJob(request), "invalid_params", field)
    assert_resp(await stub.pauseJob(ref("")), "invalid_params", "outJobNo")


async def test_type_zero_is_a_normal_job(api: tuple[RunningServer, pb_grpc.JobStub]) -> None:
    server, stub = api
    assert_resp(await stub.submitJob(create("g_type0", type=0)), "ok")  # proto3's "unset"
    assert (await native(server, "g_type0"))["schedule"]["countdown"] is False
    assert_resp(await stub.pauseJob(ref("g_type0")), "invalid_params", "outJobNo")


async def test_submit_jobs_is_all_or_nothing(api: tuple[RunningServer, pb_grpc.JobStub]) -> None:
    server, stub = api
    ok = pb.CreateJobsReq(jobs=[create("g_b1"), create("g_b2", type=10)])
    assert_resp(await stub.submitJobs(ok), "ok")
    assert await native(server, "g_b1") and await native(server, "g_b2")
    twice = pb.CreateJobsReq(jobs=[create("g_b3"), create("g_b3", jobInfo="again")])
    assert_resp(await stub.submitJobs(twice), "invalid_params", "[1].outJobNo")
    clash = pb.CreateJobsReq(jobs=[create("g_b4"), create("g_b1", jobInfo="changed")])
    assert_resp(await stub.submitJobs(clash), "out_job_no_is_exist", "[1].outJobNo")
    assert_resp(await stub.submitJobs(pb.CreateJobsReq()), "invalid_params", "body")
    assert not await native(server, "g_b3") and not await native(server, "g_b4")


async def test_pause_resume_cancel_a_countdown(
    api: tuple[RunningServer, pb_grpc.JobStub],
) -> None:
    server, stub = api
    assert_resp(await stub.submitJob(create("g_cd", type=10, triggerTime=int(time.time()) + 600)),
                "ok")
    assert_resp(await stub.pauseJob(ref("g_cd")), "ok")
    assert (await native(server, "g_cd"))["state"] == "paused"
    assert_resp(await stub.pauseJob(ref("g_cd")), "invalid_params", "outJobNo")
    assert_resp(await stub.resumeJob(ref("g_cd")), "ok")
    assert (await native(server, "g_cd"))["state"] == "active"
    assert_resp(await stub.cancelJob(ref("g_cd")), "ok")
    assert (await native(server, "g_cd"))["state"] == "cancelled"
    for rpc in (stub.cancelJob, stub.pauseJob, stub.resumeJob):
        assert_resp(await rpc(ref("g_cd")), "job_is_cancel", "outJobNo")




@pytest.mark.parametrize("required", [True, False])
async def test_a_taken_port_stops_the_node_only_when_it_was_asked_for(
    tmp_path: Path, required: bool
) -> None:
    """The default port may be another node's on the same host; a chosen one must be ours."""
    holder = grpc.aio.server()
    port = holder.add_insecure_port("127.0.0.1:0")
    await holder.start()
    node = Node(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", delayjob_grpc_port=port))
    server = DelayJobGrpcServer(node.service, node.settings, node.apps, required=required)
    try:
        if required:
            with pytest.raises(RuntimeError, match="Failed to bind"):
                await server.start()
        else:
            await server.start()
            assert server.port is None  # not serving, and not sharing the holder's port
    finally:
        await server.stop()
        await holder.stop(None)


# -- fuzz: any message gets an answer in the envelope, never unknown_error -----------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_stub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[pb_grpc.JobStub]:
    port = free_port()
    path = tmp_path_factory.mktemp("grpc_fuzz") / "cronwheel.db"
    async with (
        running_server(path, delayjob_grpc_port=port),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield pb_grpc.JobStub(channel)  # type: ignore[no-untyped-call]


CREATE = st.builds(
    pb.CreateJobReq,
    outJobNo=st.text(max_size=40),
    type=st.sampled_from([0, 5, 10, 7, -5, 2**31 - 1]),
    # Never due during the test (or invalid), so nothing is delivered anywhere.
    triggerTime=st.integers(min_value=FAR, max_value=2**63 - 1)
    | st.integers(min_value=-(2**63), max_value=-1),
    callbackProtocol=st.sampled_from(["HTTP", "grpc", "Kafka", "LOG", "smtp", ""]),
    callbackEndpoint=st.sampled_from([NOWHERE, "127.0.0.1:9", "LOG", "topic", "127.0.0.1:9/t",
                                      ""])
    | st.text(max_size=30),
    jobInfo=st.text(max_size=300),
)


@pytest.mark.asyncio(loop_scope="module")
@settings(max_examples=60, deadline=None)
@given(rpc=st.sampled_from(["submitJob", "submitJobs", "pauseJob", "resumeJob", "cancelJob"]),
       job=CREATE, more=st.lists(CREATE, max_size=3))
async def test_random_messages_get_a_known_code(
    shared_stub: pb_grpc.JobStub, rpc: str, job: pb.CreateJobReq, more: list[pb.CreateJobReq]
) -> None:
    if rpc == "submitJob":
        resp = await shared_stub.submitJob(job)
    elif rpc == "submitJobs":
        resp = await shared_stub.submitJobs(pb.CreateJobsReq(jobs=[job, *more]))
    else:
        resp = await getattr(shared_stub, rpc)(pb.OperateJobReq(outJobNo=job.outJobNo))
    assert resp.code in KNOWN_CODES, resp
    assert (resp.message == "success") if resp.code == "ok" else (": " in resp.message)


KNOWN_CODES = {"ok", "invalid_params", "out_job_no_is_exist", "job_not_exist",
               "job_is_triggered", "cannot_cancel_job", "job_is_cancel"}
