"""The dialects' admission policy on a real server, with real sockets.

Two loopback addresses tell clients apart: a client whose socket is bound to 127.0.0.2 is
another network than one on 127.0.0.1. Rules are made through /v1/apps/{app}/admission as an
admin would; the dialects answer a refused client in their own envelopes.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from cronwheel.delivery.proto import delayjob_job_pb2 as pb
from cronwheel.delivery.proto import delayjob_job_pb2_grpc as pb_grpc
from tests.servers import RunningServer, running_server
from tests.support import free_port

OTHER = "127.0.0.2"  # a second loopback address: another client network
FAR = 4_000_000_000  # 2096
NOWHERE = "http://127.0.0.1:9/callback"
_keys = itertools.count()


def client_from(server: RunningServer, source: str = "127.0.0.1",
                **headers: str) -> httpx.AsyncClient:
    """A client whose connections leave from `source` (and carry no admin token)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=server.base_url, transport=transport, headers=headers,
                             timeout=10)


async def ok(server: RunningServer, method: str, path: str, status: int, **kw: Any) -> Any:
    answer = await server.client.request(method, path, **kw)
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


async def token_of(server: RunningServer, app: str, role: str = "operator") -> dict[str, Any]:
    made: dict[str, Any] = await ok(server, "POST", f"/v1/apps/{app}/tokens", 201,
                                    json={"role": role})
    return made


async def rule(server: RunningServer, app: str, dialect: str, network: str, namespace: str,
               token: bool = False) -> dict[str, Any]:
    made: dict[str, Any] = await ok(
        server, "POST", f"/v1/apps/{app}/admission", 201,
        json={"dialect": dialect, "network": network, "namespace": namespace, "token": token})
    return made


async def namespace_of(server: RunningServer, key: str, *namespaces: str) -> str | None:
    for namespace in namespaces:
        found = await server.client.get(f"/v1/jobs/{key}", params={"namespace": namespace})
        if found.status_code == 200:
            return namespace
    return None


def delay_job(key: str) -> dict[str, Any]:
    return {"outJobNo": key, "triggerTime": FAR, "callbackProtocol": "HTTP",
            "callbackEndpoint": NOWHERE, "jobInfo": "x"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "db.sqlite", delayjob_grpc_port=free_port()) as running:
        await ok(running, "POST", "/v1/apps", 201, json={
            "name": "team", "namespaces": ["team", "team-*", "dispatch:team:*"]})
        await ok(running, "POST", "/v1/apps", 201, json={"name": "other",
                                                         "namespaces": ["other"]})
        yield running


async def test_the_longest_matching_network_decides_the_app_and_namespace(
    server: RunningServer,
) -> None:
    async with client_from(server) as here, client_from(server, OTHER) as there:
        async def submit(client: httpx.AsyncClient) -> tuple[httpx.Response, str]:
            key = f"dj-{next(_keys)}"
            return await client.post("/api/v1/submit/job", json=delay_job(key)), key

        # no rule yet: every loopback client is `system`, in today's namespace
        answer, key = await submit(there)
        assert answer.json() == {"code": "ok", "message": "success"}
        assert await namespace_of(server, key, "delayjob") == "delayjob"

        await rule(server, "team", "delayjob", f"{OTHER}/32", "team-dj")
        answer, key = await submit(there)
        assert answer.status_code == 200 and await namespace_of(server, key, "team-dj")
        answer, key = await submit(here)  # the dialect has rules now: 127.0.0.1 is outside
        assert answer.status_code == 403
        assert answer.json() == {"code": "forbidden", "message": "client: clients from "
                                 "127.0.0.1 are not admitted to the delayjob dialect"}
        assert await namespace_of(server, key, "delayjob", "team-dj") is None

        await rule(server, "system", "delayjob", "127.0.0.0/8", "delayjob")
        answer, key = await submit(here)
        assert answer.status_code == 200 and await namespace_of(server, key, "delayjob")
        answer, key = await submit(there)  # /32 beats /8
        assert answer.status_code == 200 and await namespace_of(server, key, "team-dj")
        # pause, resume and cancel look in the rule's namespace only
        assert (await here.post("/api/v1/cancel/job", json={"outJobNo": key})).json()[
            "code"] == "job_not_exist"
        assert (await there.post("/api/v1/cancel/job", json={"outJobNo": key})).json()[
            "code"] == "ok"

        await ok(server, "DELETE", f"/v1/apps/team/admission/delayjob/{OTHER}/32", 204)
        answer, key = await submit(there)
        assert answer.status_code == 200 and await namespace_of(server, key, "delayjob")


async def test_rules_are_refused_where_the_app_does_not_own_the_namespace(
    server: RunningServer,
) -> None:
    def body(**changes: Any) -> dict[str, Any]:
        return {"dialect": "delayjob", "network": "10.0.0.0/8", "namespace": "team-a"} | changes

    refused = await server.client.post("/v1/apps/other/admission", json=body())
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "namespace"
    refused = await server.client.post("/v1/apps/team/admission", json=body(
        dialect="dispatchserver", namespace="dispatch:"))
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "namespace"
    refused = await server.client.post("/v1/apps/team/admission", json=body(network="10.0.0.1/8"))
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "network"
    await ok(server, "POST", "/v1/apps/team/admission", 201, json=body())
    taken = await server.client.post("/v1/apps/other/admission", json=body(namespace="other"))
    assert taken.status_code == 409
    # the built-in namespaces are the system app's: a rule may name them
    await ok(server, "POST", "/v1/apps/system/admission", 201, json=body(
        dialect="kubernetes", network="127.0.0.0/8", namespace="k8s-job"))
    listed = await ok(server, "GET", "/v1/apps/team/admission", 200)
    assert [(r["dialect"], r["network"], r["namespace"]) for r in listed["rules"]] == [
        ("delayjob", "10.0.0.0/8", "team-a")]
    # a removed app takes its rules with it
    await ok(server, "DELETE", "/v1/apps/team", 204)
    assert [r.app for r in await server.node.apps.list_rules()] == ["system"]


async def test_a_rule_can_require_a_token_of_its_app(server: RunningServer) -> None:
    await rule(server, "team", "dispatchserver", f"{OTHER}/32", "dispatch:team:", token=True)
    operator = await token_of(server, "team")
    revoked = await token_of(server, "team")
    await ok(server, "POST", f"/v1/apps/team/tokens/{revoked['id']}/revoke", 200)
    body = {"recallConfig": {"recallType": "HTTP", "option": {"url": NOWHERE}, "data": "{}"},
            "taskConfig": {"jobCode": "close", "groupCode": "orders", "triggerType":
                           "CronTrigger", "cronExpress": "0 0 0 1 1 ? 2090"},
            "replace": True}
    cases = {
        None: (401, "client: clients from 127.0.0.2/32 must send 'Authorization: Bearer "
                    "<an operator token of app team>'"),
        "cw_aaaaaaaa_" + "x" * 40: (401, "client: the token is unknown, expired or revoked"),
        revoked["token"]: (401, "client: the token is unknown, expired or revoked"),
        (await token_of(server, "other"))["token"]: (403, None),
        (await token_of(server, "team", "viewer"))["token"]: (403, None),
    }
    for token, (status, error) in cases.items():
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with client_from(server, OTHER, **headers) as client:
            answer = await client.post("/dispatchserver/add.do", json=body)
        assert answer.status_code == status, (token, answer.text)
        envelope = answer.json()
        assert envelope["success"] is False and envelope["resultValue"] is None
        assert envelope["error"].startswith("client: ")
        if error is not None:
            assert envelope["error"] == error
    async with client_from(server, OTHER, Authorization=f"Bearer {operator['token']}") as client:
        answer = await client.post("/dispatchserver/add.do", json=body)
    assert answer.json() == {"success": True, "error": None, "resultValue": None}
    assert await namespace_of(server, "close", "dispatch:team:orders")


async def test_two_tenants_with_the_same_group_and_job_never_overwrite_each_other(
    server: RunningServer,
) -> None:
    """As the iuap client sends it: tenant cookies, a JSON body under a form content type,
    chunked; replace=true overwrites only the same tenant's task."""
    await rule(server, "team", "dispatchserver", "127.0.0.0/8", "dispatch:team:")

    async def add(tenant: str, data: str) -> httpx.Response:
        body = json.dumps({
            "recallConfig": json.dumps({"recallType": "HTTP", "option": {"url": NOWHERE},
                                        "data": data}),
            "taskConfig": json.dumps({"jobCode": "job1", "groupCode": "g1",
                                      "triggerType": "CronTrigger",
                                      "cronExpress": "0 0 0 1 1 ? 2090"}),
            "replace": "true"}).encode()

        async def chunks() -> AsyncIterator[bytes]:
            yield body[:40]
            yield body[40:]

        cookies = f"tenantid={tenant};sysid=sys1;userid=user-{tenant}"
        async with client_from(server) as client:
            return await client.post("/dispatchserver/add.do", content=chunks(), headers={
                "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies})

    for tenant, data in (("t1", "first"), ("t2", "second"), ("t1", "first again")):
        answer = await add(tenant, data)
        assert answer.json()["success"] is True, answer.text
    one = await ok(server, "GET", "/v1/jobs/job1", 200,
                   params={"namespace": "dispatch:team:t1:sys1:g1"})
    two = await ok(server, "GET", "/v1/jobs/job1", 200,
                   params={"namespace": "dispatch:team:t2:sys1:g1"})
    assert (one["payload"], two["payload"]) == ("first again", "second")
    # a tenant sees only its own tasks; without cookies, the group's own namespace
    async with client_from(server) as client:
        gone = await client.post("/dispatchserver/pause.do",
                                 json={"jobName": "job1", "groupName": "g1"})
        assert gone.status_code == 404
        paused = await client.post("/dispatchserver/pause.do", headers={
            "Cookie": "tenantid=t2;sysid=sys1"}, json={"jobName": "job1", "groupName": "g1"})
        assert paused.json()["success"] is True
        bad = await client.post("/dispatchserver/pause.do", headers={
            "Cookie": "tenantid=a:b"}, json={"jobName": "job1", "groupName": "g1"})
        assert bad.status_code == 400 and bad.json()["error"].startswith("cookie.tenantid: ")
    assert (await ok(server, "GET", "/v1/jobs/job1", 200, params={
        "namespace": "dispatch:team:t2:sys1:g1"}))["state"] == "paused"


async def test_the_admitted_principal_is_the_rules_app_as_an_operator(
    server: RunningServer,
) -> None:
    await rule(server, "team", "kubernetes", f"{OTHER}/32", "team-k8s")
    admitted = await server.node.apps.admit("kubernetes", "::ffff:127.0.0.2", (), None, "u1")
    principal = admitted.principal
    assert (principal.app, principal.role.value, principal.user, principal.address) == (
        "team", "operator", "u1", "::ffff:127.0.0.2")
    assert "team-*" in principal.namespaces and admitted.namespace == "team-k8s"


async def test_kubernetes_clients_outside_the_policy_get_its_envelope(
    server: RunningServer,
) -> None:
    await rule(server, "team", "kubernetes", "10.0.0.0/8", "team-k8s")
    async with client_from(server) as client:
        refused = await client.get("/api/once_job/lists")
        assert refused.status_code == 403
        assert refused.json() == {"code": 403, "cause": "client: clients from 127.0.0.1 are "
                                  "not admitted to the kubernetes dialect",
                                  "error_msg": "client not admitted.", "data": None}
        await rule(server, "team", "kubernetes", "127.0.0.1/32", "team-k8s")
        listed = await client.get("/api/once_job/lists")
        assert listed.status_code == 200 and listed.json()["code"] == 200


async def test_the_grpc_port_admits_by_its_own_rules(server: RunningServer) -> None:
    port = server.node.settings.delayjob_grpc_port
    operator = await token_of(server, "team")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.JobStub(channel)  # type: ignore[no-untyped-call]
        request = pb.CreateJobReq(outJobNo="g1", type=5, triggerTime=FAR,
                                  callbackProtocol="HTTP", callbackEndpoint=NOWHERE)
        assert (await stub.submitJob(request)).code == "ok"  # built-in: loopback is system
        assert await namespace_of(server, "g1", "delayjob")
        await rule(server, "team", "delayjob-grpc", "10.0.0.0/8", "team-grpc")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.submitJob(pb.CreateJobReq(outJobNo="g2", triggerTime=FAR,
                                                 callbackProtocol="LOG", callbackEndpoint="LOG"))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "127.0.0.1 are not admitted to the delayjob-grpc dialect" in str(
            refused.value.details())
        await rule(server, "team", "delayjob-grpc", "127.0.0.1/32", "team-grpc", token=True)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.cancelJob(pb.OperateJobReq(outJobNo="g1"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        metadata = (("authorization", f"Bearer {operator['token']}"),)
        answer = await stub.submitJob(pb.CreateJobReq(
            outJobNo="g3", triggerTime=FAR, callbackProtocol="LOG", callbackEndpoint="LOG"),
            metadata=metadata)
        assert answer.code == "ok"
        assert await namespace_of(server, "g3", "team-grpc", "delayjob") == "team-grpc"
        # the system's job is not in this client's namespace
        answer = await stub.cancelJob(pb.OperateJobReq(outJobNo="g1"), metadata=metadata)
        assert answer.code == "job_not_exist"


# -- qschedule: Q-Server-Token as app data ------------------------------------------------------

QS_TOKEN = "IGbpF3fyuEVyzkNKuwZZESxPx3IhsHm5LnUSM1"
QS_APPS = [{"id": 163, "name": "qschedule.demo", "token": QS_TOKEN}]


async def qs_info(server: RunningServer, token: str) -> httpx.Response:
    async with client_from(server, **{"Q-Server-Token": token}) as client:
        return await client.get("/api2/jobs/nothing.do")


async def test_the_qschedule_setting_is_imported_once_and_kept_as_a_hash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "qs.sqlite"
    caplog.set_level(logging.WARNING, "cronwheel.apps")
    async with running_server(path, qschedule_apps=QS_APPS) as server:
        [imported] = (await ok(server, "GET", "/v1/apps/system/qschedule", 200))["qschedule"]
        assert (imported["id"], imported["name"], imported["app"]) == (163, "qschedule.demo",
                                                                      "system")
        assert (await qs_info(server, QS_TOKEN)).json()["message"] == "job不存在"
        assert (await qs_info(server, "a-wrong-token")).status_code == 401
    assert sum("imported from CRONWHEEL_QSCHEDULE_APPS" in r.getMessage()
               for r in caplog.records) == 1
    assert QS_TOKEN.encode() not in path.read_bytes()
    async with running_server(path, qschedule_apps=QS_APPS) as server:  # again: nothing new
        assert len((await ok(server, "GET", "/v1/apps/system/qschedule", 200))["qschedule"]) == 1
        # removed through the API: refused at once
        await ok(server, "DELETE", "/v1/apps/system/qschedule/163", 204)
        assert (await qs_info(server, QS_TOKEN)).status_code == 401
    async with running_server(path) as server:  # the setting gone: the app data serves
        assert (await ok(server, "GET", "/v1/apps/system/qschedule", 200))["qschedule"] == []
    assert sum("imported from CRONWHEEL_QSCHEDULE_APPS" in r.getMessage()
               for r in caplog.records) == 1


async def test_a_qschedule_token_issued_through_the_api(server: RunningServer) -> None:
    made = await ok(server, "POST", "/v1/apps/team/qschedule", 201,
                    json={"id": 77, "name": "team-qs"})
    assert len(made["token"]) >= 24 and made["app"] == "team"
    listed = await ok(server, "GET", "/v1/apps/team/qschedule", 200)
    assert "token" not in listed["qschedule"][0]
    await ok(server, "POST", "/v1/jobs", 201, json={
        "key": "nightly", "namespace": "team-qs", "target": {"kind": "http", "url": NOWHERE},
        "schedule": {"kind": "cron", "expr": "0 3 * * *"}})
    answer = await qs_info(server, made["token"])
    assert answer.status_code == 404  # another name: its own namespace only
    async with client_from(server, **{"Q-Server-Token": made["token"]}) as client:
        info = await client.get("/api2/jobs/nightly.do")
    assert info.status_code == 200 and info.json()["data"]["appId"] == 77
    refused = await server.client.post("/v1/apps/other/qschedule",
                                       json={"id": 78, "name": "team-qs2"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "name"
    taken = await server.client.post("/v1/apps/team/qschedule",
                                     json={"id": 77, "name": "team-qs3"})
    assert taken.status_code == 409
    await ok(server, "DELETE", "/v1/apps/team/qschedule/77", 204)
    assert (await qs_info(server, made["token"])).status_code == 401
