"""The audit trail of the delay-job gRPC API: each call is one entry, as an HTTP request is.

A real grpc.aio client against a real server's gRPC port on loopback. A change's entry is
written with the change (it is there as soon as the call returns); refusals, by the
admission policy too, are recorded right after, with who, from where and the outcome.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cronwheel.delivery.proto import delayjob_job_pb2 as pb
from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc
from tests.dialects.test_delayjob_grpc_api import create, ref
from tests.integration.test_admission import rule, token_of
from tests.servers import RunningServer, running_server
from tests.stores import database_url
from tests.support import free_port, wait_until

SHOWN = ("action", "outcome", "status", "app", "namespace", "target")


@pytest.fixture(params=["sqlite", "postgres"])
async def api(request: pytest.FixtureRequest,
              tmp_path: Path) -> AsyncIterator[tuple[RunningServer, pb_grpc.JobStub]]:
    port = free_port()
    async with (
        database_url(request.param, tmp_path) as url,
        running_server(url, run_engine=False, delayjob_grpc_port=port) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield server, pb_grpc.JobStub(channel)  # type: ignore[no-untyped-call]


async def grpc_entries(server: RunningServer) -> list[dict[str, Any]]:
    """The gRPC calls' entries, oldest first."""
    answer = await server.client.get("/v1/audit", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return [e for e in reversed(answer.json()["entries"])
            if e["action"].startswith("delayjob_grpc.")]


def shown(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry[name] for name in SHOWN)


async def test_each_call_is_recorded_changes_with_the_change(
    api: tuple[RunningServer, pb_grpc.JobStub],
) -> None:
    server, stub = api
    assert (await stub.submitJob(create("a1"))).code == "ok"
    # written in the change's transaction: there the moment the call has returned
    [first] = await grpc_entries(server)
    assert shown(first) == ("delayjob_grpc.submitJob", "ok", 200, "system", "delayjob", "a1")
    assert first["token_prefix"] is None and first["role"] == "operator"
    assert first["address"] == "127.0.0.1"
    assert first["detail"] == {"rpc": "delay.job.Job/submitJob"}

    assert (await stub.submitJob(create("a1", jobInfo="other"))).code == "out_job_no_is_exist"
    assert (await stub.pauseJob(ref("a1"))).code == "invalid_params"  # not a countdown
    assert (await stub.cancelJob(ref("a1"))).code == "ok"
    assert (await stub.cancelJob(ref("a1"))).code == "job_is_cancel"
    assert (await stub.resumeJob(ref("never"))).code == "job_not_exist"
    assert (await stub.submitJob(create("a2", callbackProtocol="SMTP"))).code == \
        "invalid_params"
    jobs = pb.CreateJobsReq(jobs=[create("b1"), create("b2")])
    assert (await stub.submitJobs(jobs)).code == "ok"

    async def all_there() -> list[dict[str, Any]]:
        found = await grpc_entries(server)
        return found if len(found) == 8 else []

    found = await wait_until(all_there)
    assert [shown(e) for e in found] == [
        ("delayjob_grpc.submitJob", "ok", 200, "system", "delayjob", "a1"),
        ("delayjob_grpc.submitJob", "conflict", 409, "system", "delayjob", "a1"),
        ("delayjob_grpc.pauseJob", "conflict", 409, "system", "delayjob", "a1"),
        ("delayjob_grpc.cancelJob", "ok", 200, "system", "delayjob", "a1"),
        ("delayjob_grpc.cancelJob", "conflict", 409, "system", "delayjob", "a1"),
        ("delayjob_grpc.resumeJob", "not_found", 404, "system", "delayjob", "never"),
        ("delayjob_grpc.submitJob", "invalid", 400, "system", "delayjob", "a2"),
        ("delayjob_grpc.submitJobs", "ok", 200, "system", "delayjob", None),
    ]
    assert found[-1]["detail"] == {"rpc": "delay.job.Job/submitJobs", "jobs": 2}


async def test_refused_clients_and_token_holders_are_recorded_as_who_they_are(
    api: tuple[RunningServer, pb_grpc.JobStub],
) -> None:
    server, stub = api
    made = await server.client.post("/v1/apps", json={"name": "team",
                                                      "namespaces": ["team-grpc"]})
    assert made.status_code == 201, made.text
    operator = (await token_of(server, "team"))["token"]
    await rule(server, "team", "delayjob-grpc", "10.0.0.0/8", "team-grpc")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.submitJob(create("r1"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await rule(server, "team", "delayjob-grpc", "127.0.0.1/32", "team-grpc", token=True)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.cancelJob(ref("r1"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    metadata = (("authorization", f"Bearer {operator}"),)
    assert (await stub.submitJob(create("r2"), metadata=metadata)).code == "ok"

    async def all_there() -> list[dict[str, Any]]:
        found = await grpc_entries(server)
        return found if len(found) == 3 else []

    found = await wait_until(all_there)
    by_action = {(e["action"], e["outcome"]): e for e in found}
    assert sorted(by_action) == [
        ("delayjob_grpc.cancelJob", "unauthenticated"),
        ("delayjob_grpc.submitJob", "forbidden"),
        ("delayjob_grpc.submitJob", "ok"),
    ]
    for key, status in ((("delayjob_grpc.submitJob", "forbidden"), 403),
                        (("delayjob_grpc.cancelJob", "unauthenticated"), 401)):
        entry = by_action[key]  # nobody was admitted: no app, no token, only the address
        assert entry["status"] == status and entry["address"] == "127.0.0.1"
        assert entry["app"] is None and entry["token_prefix"] is None
        assert entry["namespace"] is None and entry["target"] == "r1"
    admitted = by_action[("delayjob_grpc.submitJob", "ok")]
    assert shown(admitted) == ("delayjob_grpc.submitJob", "ok", 200, "team", "team-grpc", "r2")
    assert admitted["token_prefix"] == operator[:11] and admitted["role"] == "operator"
