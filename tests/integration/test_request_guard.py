"""Requests refused at the door (issue 10 points 7, 10, 11), against a real server on loopback:
refused targets at submit, forged cross-site writes, wrong Host, huge bodies, and bad input
that used to get a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.support import TEST_ADMIN_TOKEN

NEVER = {"kind": "once", "at": "2096-01-01T00:00:00Z"}
HUGE = 2**64  # one past the largest integer orjson can write


def job(key: str = "j", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "schedule": NEVER,
                            "target": {"kind": "http", "url": "http://127.0.0.1:9/cb"}}
    body.update(changes)
    return body


async def refused_field(response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    field: str = response.json()["error"]["field"]
    return field


async def count_jobs(server: RunningServer) -> int:
    response = await server.client.get("/v1/jobs", params={"limit": 100})
    assert response.status_code == 200
    return len(response.json()["jobs"])


# -- point 7: the target guard at submit time -------------------------------------------------


@pytest.mark.parametrize(("target", "field"), [
    ({"kind": "http", "url": "http://169.254.169.254/latest/meta-data", "method": "GET"},
     "target.url"),
    ({"kind": "http", "url": "http://[::ffff:169.254.169.254]/"}, "target.url"),
    ({"kind": "http", "url": "http://[fd00:ec2::254]/latest/meta-data"}, "target.url"),
    ({"kind": "http", "url": "http://0xa9fea9fe/"}, "target.url"),
    ({"kind": "http", "url": "http://2852039166/"}, "target.url"),
    ({"kind": "http", "url": "http://10.0.0.5:8080/cb"}, "target.url"),  # private: not allowed
    ({"kind": "http", "url": "http://0.0.0.0:8080/cb"}, "target.url"),
    ({"kind": "grpc", "address": "169.254.169.254:50051"}, "target.address"),
    ({"kind": "grpc", "address": "[::ffff:a9fe:a9fe]:50051"}, "target.address"),
    ({"kind": "kafka", "bootstrap": ["127.0.0.1:9092", "169.254.169.254:9092"], "topic": "t"},
     "target.bootstrap"),
    ({"kind": "tcp", "host": "169.254.169.254", "port": 9000}, "target.host"),
    ({"kind": "tcp", "host": "[fe80::1]", "port": 9000}, "target.host"),
    ({"kind": "worker", "type": "http",
      "spec": {"url": "http://169.254.169.254/latest/meta-data"}}, "target.spec.url"),
])
async def test_a_literal_refused_target_is_refused_at_submit(
    server: RunningServer, target: dict[str, Any], field: str
) -> None:
    response = await server.client.post("/v1/jobs", json=job(target=target))
    assert await refused_field(response) == field
    assert "target refused" in response.json()["error"]["message"]
    assert await count_jobs(server) == 0


async def test_the_issue_example_is_refused_for_its_header_and_its_address(
    server: RunningServer,
) -> None:
    """The intro: GET the metadata service with the header that unlocks it."""
    target = {"kind": "http", "url": "http://169.254.169.254/latest/meta-data",
              "method": "GET", "headers": {"Metadata-Flavor": "Google"}}
    response = await server.client.post("/v1/jobs", json=job(target=target))
    assert await refused_field(response) == "target.headers.Metadata-Flavor"
    del target["headers"]
    response = await server.client.post("/v1/jobs", json=job(target=target))
    assert await refused_field(response) == "target.url"


async def test_a_loopback_target_and_a_name_are_accepted(server: RunningServer) -> None:
    for key, url in [("a", "http://127.0.0.1:9/cb"), ("b", "http://[::1]:9/cb"),
                     ("c", "http://hooks.example.com/cb")]:
        response = await server.client.post("/v1/jobs", json=job(key, target={
            "kind": "http", "url": url}))
        assert response.status_code == 201, response.text


async def test_an_alert_webhook_is_held_to_the_same_policy(server: RunningServer) -> None:
    alert = {"after": 3, "webhook": "http://169.254.169.254/hook"}
    response = await server.client.post("/v1/jobs", json=job(alert=alert))
    assert await refused_field(response) == "alert.webhook"


async def test_a_batch_names_the_item_and_writes_nothing(server: RunningServer) -> None:
    bad = job("b", target={"kind": "tcp", "host": "169.254.169.254", "port": 1})
    response = await server.client.post("/v1/jobs/batch", json={"jobs": [job("a"), bad]})
    assert await refused_field(response) == "jobs[1].target.host"
    assert await count_jobs(server) == 0


async def test_a_dialect_callback_is_refused_in_its_envelope(server: RunningServer) -> None:
    body = {"outJobNo": "x", "type": 5, "triggerTime": 4_000_000_000, "jobInfo": "i",
            "callbackProtocol": "HTTP", "callbackEndpoint": "http://169.254.169.254/cb"}
    response = await server.client.post("/api/v1/submit/job", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert "target refused" in response.text
    assert await count_jobs(server) == 0


@pytest.mark.parametrize(("protocol", "endpoint"), [
    ("GRPC", "169.254.169.254:50051"),
    ("GRPC", "[::ffff:a9fe:a9fe]:50051"),
    ("HTTP", "http://[fd00:ec2::254]/cb"),
    ("KAFKA", "169.254.169.254:9092/orders"),
])
async def test_a_delayjob_callback_refusal_names_the_callback_endpoint(
    server: RunningServer, protocol: str, endpoint: str
) -> None:
    body = {"outJobNo": "x", "triggerTime": 4_000_000_000, "callbackProtocol": protocol,
            "callbackEndpoint": endpoint}
    response = await server.client.post("/api/v1/submit/job", json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["code"] == "invalid_params"
    assert answer["message"].startswith("callbackEndpoint: target refused"), answer
    batch = await server.client.post("/api/v1/submit/jobs", json=[body])
    assert batch.json()["message"].startswith("[0].callbackEndpoint: target refused"), batch.text
    assert await count_jobs(server) == 0


async def test_headers_a_job_may_not_set_are_refused_at_submit(server: RunningServer) -> None:
    for name, value in [("Host", "internal"), ("Transfer-Encoding", "chunked"),
                        ("Content-Length", "0"), ("Connection", "close"),
                        ("X-Note", "a\r\nX-Smuggled: 1")]:
        target = {"kind": "http", "url": "http://127.0.0.1:9/", "headers": {name: value}}
        response = await server.client.post("/v1/jobs", json=job(target=target))
        assert await refused_field(response) == f"target.headers.{name}"


# -- point 10: forged requests ----------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://127.0.0.1:1"},  # another port is another origin
])
async def test_a_cross_site_write_is_refused(
    server: RunningServer, headers: dict[str, str]
) -> None:
    response = await server.client.post("/v1/jobs", json=job(), headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_site_request"
    response = await server.client.delete("/v1/jobs/j", headers=headers)
    assert response.status_code == 403
    assert await count_jobs(server) == 0


async def test_a_cross_site_form_post_to_a_dialect_is_refused_in_its_envelope(
    server: RunningServer,
) -> None:
    """A web page can POST text/plain without a preflight; the dialect would parse it."""
    body = '{"outJobNo":"x","type":5,"triggerTime":4000000000,"jobInfo":"i",' \
           '"callbackProtocol":"HTTP","callbackEndpoint":"http://127.0.0.1:9/cb"}'
    response = await server.client.post(
        "/api/v1/submit/job", content=body,
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example",
                 "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert response.json() == {"code": "cross_site_request",
                               "message": "cross-site requests may not change anything"}
    assert await count_jobs(server) == 0


async def test_same_origin_and_reads_pass(server: RunningServer) -> None:
    origin = server.base_url
    response = await server.client.post("/v1/jobs", json=job(),
                                        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 201, response.text
    response = await server.client.get("/v1/jobs/j", headers={"Origin": "http://evil.example",
                                                              "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200


async def test_an_unknown_host_name_is_refused(server: RunningServer) -> None:
    """DNS rebinding: evil.example re-pointed at 127.0.0.1 still says Host: evil.example."""
    port = server.base_url.rpartition(":")[2]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        response = await server.client.get("/v1/jobs", headers={"Host": host})
        assert response.status_code == 400, host
        assert response.json()["error"]["code"] == "host_not_allowed"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST."):
        response = await server.client.get("/v1/jobs", headers={"Host": host})
        assert response.status_code == 200, host


@pytest.fixture
async def small_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "c.db", run_engine=False, max_body_bytes=64 * 1024,
                              allowed_hosts="cron.example.com,.corp.example") as running:
        yield running


async def test_allowed_hosts_setting_names_the_hosts_and_their_origins(
    small_server: RunningServer,
) -> None:
    client = small_server.client
    assert (await client.get("/v1/jobs", headers={"Host": "cron.example.com"})).status_code == 200
    assert (await client.get("/v1/jobs", headers={"Host": "a.corp.example"})).status_code == 200
    assert (await client.get("/v1/jobs", headers={"Host": "localhost"})).status_code == 400
    for probe in ("/healthz", "/metrics"):  # probes address a node by its IP
        assert (await client.get(probe, headers={"Host": "10.1.2.3:1989"})).status_code == 200
    headers = {"Host": "cron.example.com", "Origin": "https://cron.example.com"}
    response = await client.post("/v1/jobs", json=job(), headers=headers)
    assert response.status_code == 201, response.text


async def _raw(server: RunningServer, head: bytes, body_parts: list[bytes]) -> tuple[bytes, int]:
    """Send a request by hand; returns the answer and how many body bytes got sent."""
    port = int(server.base_url.rpartition(":")[2])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
            try:
                await writer.drain()
            except ConnectionError:
                break
            sent += len(part)
        answer = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    return answer, sent


async def test_a_declared_huge_body_is_refused_before_it_is_read(server: RunningServer) -> None:
    """50 MB declared, 10 bytes sent: the 413 comes back at once, nothing waits for the rest."""
    head = (b"POST /v1/jobs/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n")
    answer, _ = await _raw(server, head, [b'{"jobs": ['])
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"body_too_large"' in answer


async def test_a_chunked_body_is_cut_off_at_the_cap(small_server: RunningServer) -> None:
    head = (b"POST /v1/jobs/batch HTTP/1.1\r\nHost: cron.example.com\r\n"
            b"Authorization: Bearer " + TEST_ADMIN_TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 16_384
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 8  # 128 KiB: twice the cap
    answer, _ = await _raw(small_server, head, parts)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"body_too_large" in answer


async def test_the_door_answers_before_authentication(small_server: RunningServer) -> None:
    """Without a token: a wrong Host, a cross-site write and a declared oversized body get the
    hardening's answer (no token is looked up for them); a request that passes the door meets
    the 401, before its body is read."""
    async with httpx.AsyncClient(base_url=small_server.base_url) as anonymous:
        wrong_host = await anonymous.get("/v1/jobs", headers={"Host": "evil.example"})
        assert (wrong_host.status_code, wrong_host.json()["error"]["code"]) == (
            400, "host_not_allowed")
        forged = await anonymous.post("/v1/jobs", json=job(), headers={
            "Host": "cron.example.com", "Origin": "http://evil.example"})
        assert (forged.status_code, forged.json()["error"]["code"]) == (403, "cross_site_request")
        huge = await anonymous.post("/v1/jobs", content=b"x" * (65 * 1024), headers={
            "Host": "cron.example.com", "Content-Type": "application/json"})
        assert (huge.status_code, huge.json()["error"]["code"]) == (413, "body_too_large")
        plain = await anonymous.post("/v1/jobs", content=b"not json", headers={
            "Host": "cron.example.com", "Content-Type": "application/json"})
        assert (plain.status_code, plain.json()["error"]["code"]) == (401, "unauthenticated")
    head = (b"POST /v1/jobs/batch HTTP/1.1\r\nHost: cron.example.com\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer, _ = await _raw(small_server, head, [b"4\r\nxxxx\r\n"])  # the rest never comes
    assert answer.startswith(b"HTTP/1.1 401 ")


async def test_a_body_under_the_cap_passes(small_server: RunningServer) -> None:
    response = await small_server.client.post("/v1/jobs", json=job(payload="x" * 30_000),
                                              headers={"Host": "cron.example.com"})
    assert response.status_code == 201, response.text


# -- point 11: bad input that got a 500 -------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    (job(target={"kind": "http", "url": "http://[::1/cb"}), "target.url"),
    (job(target={"kind": "http", "url": "http://[evil]/"}), "target.url"),
    (job(target={"kind": "http", "url": "http://h:99999/"}), "target.url"),
    (job(alert={"after": 1, "webhook": "http://[::1/"}), "alert.webhook"),
    (job(target={"kind": "worker", "type": "http", "spec": {"url": "https://[x/"}}),
     "target.spec.url"),
])
async def test_a_broken_url_is_a_422(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    response = await server.client.post("/v1/jobs", json=body)
    assert await refused_field(response) == field


async def test_a_broken_url_in_a_dialect_is_a_4xx(server: RunningServer) -> None:
    body = {"outJobNo": "x", "type": 5, "triggerTime": 4_000_000_000, "jobInfo": "i",
            "callbackProtocol": "HTTP", "callbackEndpoint": "http://[::1/cb"}
    response = await server.client.post("/api/v1/submit/job", json=body)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(("body", "field"), [
    (job(payload={"n": HUGE}), "payload"),
    (job(payload=[1, -(2**63) - 1]), "payload"),
    (job(target={"kind": "http", "url": "http://127.0.0.1:9/", "extra": HUGE}), "target"),
    (job(schedule={"kind": "once", "at": "2096-01-01T00:00:00Z", "n": HUGE}), "schedule"),
    (job(target={"kind": "worker", "type": "python",
                 "spec": {"callable": "m:f", "args": [HUGE]}}), "target"),
])
async def test_an_integer_beyond_64_bits_is_a_422(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    response = await server.client.post("/v1/jobs", json=body)
    assert await refused_field(response) == field
    assert "64 bits" in response.json()["error"]["message"]
    batch = await server.client.post("/v1/jobs/batch", json={"jobs": [job("ok"), body]})
    assert await refused_field(batch) == f"jobs[1].{field}"
    assert await count_jobs(server) == 0


async def test_an_integer_beyond_64_bits_on_trigger_is_a_422_and_breaks_nothing(
    server: RunningServer,
) -> None:
    assert (await server.client.post("/v1/jobs", json=job())).status_code == 201
    trigger = server.client.post("/v1/jobs/j/trigger", json={"payload": {"n": HUGE}})
    others = [server.client.post("/v1/jobs", json=job(f"k{i}")) for i in range(5)]
    first, *rest = await asyncio.gather(trigger, *others)
    assert await refused_field(first) == "payload"
    assert [r.status_code for r in rest] == [201] * 5  # the same write group is unharmed
    ok = await server.client.post("/v1/jobs/j/trigger", json={"payload": {"n": 2**64 - 1}})
    assert ok.status_code == 202, ok.text


async def test_a_non_ascii_result_on_finish_is_a_422(server: RunningServer) -> None:
    client = server.client
    worker = await client.post("/v1/workers", json={"name": "w1", "groups": ["default"]})
    assert worker.status_code in (200, 201), worker.text
    worker_id = worker.json()["id"]
    response = await client.post(f"/v1/workers/{worker_id}/tasks/t1/finish",
                                 json={"outcome": "success", "result": "ré"})
    assert await refused_field(response) == "result"
    valid = base64.b64encode(b"fine").decode()
    response = await client.post(f"/v1/workers/{worker_id}/tasks/t1/finish",
                                 json={"outcome": "success", "result": valid})
    assert response.status_code != 500


async def test_a_405_says_which_methods_are_allowed(server: RunningServer) -> None:
    response = await server.client.put("/v1/jobs")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    response = await server.client.get("/api/v1/submit/job")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


async def test_the_openapi_document_lists_what_the_routes_answer(server: RunningServer) -> None:
    client = server.client
    spec = (await client.get("/openapi.json")).json()

    def listed(method: str, path: str) -> set[str]:
        return set(spec["paths"][path][method]["responses"])

    for path, operations in spec["paths"].items():
        for method in operations:
            assert ("400" in listed(method, path)) == (path not in ("/healthz", "/metrics"))
            if path.startswith("/v1/") or path == "/metrics":  # dialects have their own 401s
                assert "401" in listed(method, path), (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"403", "413"} <= listed(method, path), (method, path)
    # one 403 entry naming both reasons a write can get it
    forbidden = spec["paths"]["/v1/jobs"]["post"]["responses"]["403"]
    assert "role" in forbidden["description"] and "cross-site" in forbidden["description"]
    assert forbidden["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    assert (await client.post("/v1/jobs", json=job())).status_code == 201
    assert (await client.post("/v1/jobs/j/cancel")).status_code == 200
    cases = [
        ("get", "/v1/jobs/{key}", await client.get("/v1/jobs/nope")),
        ("get", "/v1/jobs/{key}/runs", await client.get("/v1/jobs/nope/runs")),
        ("post", "/v1/jobs/{key}/pause", await client.post("/v1/jobs/nope/pause")),
        ("post", "/v1/jobs/{key}/trigger", await client.post("/v1/jobs/j/trigger")),
        ("post", "/v1/jobs", await client.post("/v1/jobs", json=job(payload=1))),
        ("post", "/v1/jobs/batch", await client.post("/v1/jobs/batch",
                                                     json={"jobs": [job(payload=2)]})),
        ("get", "/v1/runs/{run_id}", await client.get("/v1/runs/nope")),
        ("post", "/v1/runs/{run_id}/kill", await client.post("/v1/runs/nope/kill")),
        ("post", "/v1/workers/{worker_id}/heartbeat",
         await client.post("/v1/workers/nope/heartbeat", json={})),
        ("post", "/v1/jobs", await client.post("/v1/jobs", json=job("o"),
                                               headers={"Origin": "http://evil.example"})),
        ("get", "/v1/jobs", await client.get("/v1/jobs", headers={"Host": "evil.example"})),
        ("get", "/v1/jobs", await client.get("/v1/jobs", headers={"Authorization": "Bearer x"})),
        ("get", "/metrics", await client.get("/metrics", headers={"Authorization": "Bearer x"})),
    ]
    for method, path, response in cases:
        assert response.status_code >= 400, (path, response.text)
        assert str(response.status_code) in listed(method, path), (method, path, response.text)


async def test_statuses_found_by_fuzzing_are_documented(server: RunningServer) -> None:
    """Answers schemathesis found missing from the document (tests/integration/
    test_schemathesis.py), each asserted here on its own."""
    client = server.client
    spec = (await client.get("/openapi.json")).json()
    assert (await client.post("/v1/apps", json={"name": "dup"})).status_code == 201
    cases = [
        ("get", "/v1/jobs/{key}/dependencies", 404, await client.get("/v1/jobs/no/dependencies")),
        ("delete", "/v1/jobs/{key}", 404, await client.delete("/v1/jobs/no")),
        ("post", "/v1/apps", 409, await client.post("/v1/apps", json={"name": "dup"})),
        ("get", "/v1/apps/{app}", 404, await client.get("/v1/apps/no")),
        ("patch", "/v1/apps/{app}", 404, await client.patch("/v1/apps/no", json={})),
        ("delete", "/v1/apps/{app}", 404, await client.delete("/v1/apps/no")),
        ("get", "/v1/apps/{app}/tokens", 404, await client.get("/v1/apps/no/tokens")),
        ("post", "/v1/apps/{app}/tokens", 404,
         await client.post("/v1/apps/no/tokens", json={"role": "viewer"})),
        ("get", "/api/once_job/describe/{job_id}", 404,
         await client.get("/api/once_job/describe/no")),
        ("post", "/api/cron_job/suspend/{job_id}", 404,
         await client.post("/api/cron_job/suspend/no")),
    ]
    for method, path, status, response in cases:
        assert response.status_code == status, (method, path, response.text)
        documented = spec["paths"][path][method]["responses"]
        assert str(status) in documented, (method, path)
    # the Kubernetes dialect documents its own envelope, not the native one
    envelope = spec["paths"]["/api/once_job/describe/{job_id}"]["get"]["responses"]["404"]
    schema = envelope["content"]["application/json"]["schema"]
    assert set(schema["required"]) == set(cases[-1][3].json())
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


async def test_a_body_that_is_not_text_is_a_422_naming_it(server: RunningServer) -> None:
    """Bytes that are not UTF-8 used to be a 400 `http_error` naming nothing."""
    response = await server.client.post(
        "/v1/jobs", content=b"\xd5", headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "body"


async def test_a_created_job_links_to_what_can_be_done_with_it(server: RunningServer) -> None:
    """The OpenAPI links that clients and the stateful fuzzer follow from a created job."""
    spec = (await server.client.get("/openapi.json")).json()
    links = spec["paths"]["/v1/jobs"]["post"]["responses"]["201"]["links"]
    read = links["GetJobsKey"]
    assert read["operationRef"] == "#/paths/~1v1~1jobs~1{key}/get"
    assert read["parameters"] == {"key": "$response.body#/key",
                                  "namespace": "$response.body#/namespace"}
    assert {"PostJobsKeyTrigger", "DeleteJobsKey", "PostJobsKeyPause"} <= set(links)
    trigger = spec["paths"]["/v1/jobs/{key}/trigger"]["post"]["responses"]["202"]["links"]
    assert trigger["GetRunsRunId"]["parameters"] == {"run_id": "$response.body#/id"}


@pytest.mark.parametrize(("option", "words"), [
    ({"url": "http://[::1/cb"}, "url"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "recallConfig.option.url: target refused"),
])
async def test_a_dispatchserver_callback_is_checked_too(
    server: RunningServer, option: dict[str, Any], words: str
) -> None:
    recall = {"recallType": "HTTP", "option": json.dumps(option), "data": "{}"}
    task = {"triggerType": "CronTrigger", "jobCode": "c", "groupCode": "g", "priority": 5,
            "endDate": None, "cronExpress": "0 0 0 1 1 ? 2099"}
    body = {"recallConfig": json.dumps(recall), "taskConfig": json.dumps(task),
            "replace": "false"}
    response = await server.client.post("/dispatchserver/add.do", data=body)
    assert 400 <= response.status_code < 500, response.text
    assert words in response.text
    assert await count_jobs(server) == 0


async def test_an_offset_or_attempt_beyond_64_bits_in_a_query_is_a_422(
    server: RunningServer,
) -> None:
    """They reached the database, which cannot compare them: a 500 before."""
    client = server.client
    worker_id = (await client.post("/v1/workers", json={"name": "w", "groups": ["default"]})
                 ).json()["id"]
    shell = {"kind": "worker", "type": "shell", "spec": {"command": "true"}}
    assert (await client.post("/v1/jobs", json=job(target=shell))).status_code == 201
    run_id = (await client.post("/v1/jobs/j/trigger")).json()["id"]
    lease = await client.post(f"/v1/workers/{worker_id}/lease", json={"max": 1, "wait": 5})
    [task] = lease.json()["tasks"]
    output = f"/v1/workers/{worker_id}/tasks/{task['task_id']}/output"
    assert (await client.post(output, params={"offset": 0}, content=b"hello")).status_code == 200
    for path, name in [(output, "offset"), (f"/v1/runs/{run_id}/log", "offset"),
                       (f"/v1/runs/{run_id}/log", "attempt"),
                       (f"/v1/runs/{run_id}/log/follow", "offset")]:
        method = "POST" if path == output else "GET"
        response = await client.request(method, path, params={name: str(2**70)}, content=b"x"
                                        if method == "POST" else None)
        assert await refused_field(response) == name


async def test_the_servers_policy_reaches_its_deliveries(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    """Settings to node to transport: with loopback not allowed, a literal is refused at
    submit and a name resolving to loopback fails its run when it is delivered."""
    async with running_server(tmp_path / "s.db", target_allow="") as strict:
        client = strict.client
        literal = job("lit", target={"kind": "http", "url": receiver.url})
        assert await refused_field(await client.post("/v1/jobs", json=literal)) == "target.url"
        named = receiver.url.replace("127.0.0.1", "localhost")
        body = job("named", schedule={"kind": "once", "at": "2020-01-01T00:00:00Z"},
                   target={"kind": "http", "url": named}, retry={"max_attempts": 1})
        assert (await client.post("/v1/jobs", json=body)).status_code == 201
        for _ in range(100):
            runs = (await client.get("/v1/jobs/named/runs")).json()["runs"]
            if runs and runs[0]["state"] not in ("scheduled", "running", "pending"):
                break
            await asyncio.sleep(0.1)
        assert runs[0]["state"] == "failed", runs
        assert runs[0]["last_error"].startswith("target refused: localhost resolves to")
    assert receiver.received == []
