"""Every dialect path of the OpenAPI spec × (outside the policy, inside it): a client outside
gets its dialect's refusal, exact status and envelope; one inside is not refused.

The paths come from the running app's spec and are sorted into dialects by prefix, so a new
dialect path is covered (or fails here) without anyone listing it. The network dialects are
told apart by the client socket's source address (127.0.0.1 outside, 127.0.0.2 inside);
qschedule by its Q-Server-Token (none, wrong, right); Sentinel by its appToken (none, forged,
stale, of an unknown app, right), whatever the network.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronwheel.domain.app_keys import app_token
from tests.servers import RunningServer, running_server

INSIDE, OUTSIDE = "127.0.0.2", "127.0.0.1"
OPEN_PATHS = {"/healthz", "/metrics"}  # not dialects
# path prefix -> dialect; "open" is qschedule's /api/check, token-less in its document
PREFIXES = (("/api/v1/", "delayjob"), ("/dispatchserver/", "dispatchserver"),
            ("/api/once_job/", "kubernetes"), ("/api/cron_job/", "kubernetes"),
            ("/api/job_logs/", "kubernetes"), ("/api2/", "qschedule"), ("/api/check/", "open"),
            ("/api/job/", "sentinel"), ("/api/task/", "sentinel"), ("/api/log/", "sentinel"))
NETWORK_DIALECTS = ("delayjob", "dispatchserver", "kubernetes")
PARAMS = {"job_name": "nothing", "job_id": "nothing", "ip": "127.0.0.9"}


def dialect_of(path: str) -> str:
    for prefix, dialect in PREFIXES:
        if path.startswith(prefix):
            return dialect
    raise AssertionError(f"{path}: a path of no known dialect; add it to PREFIXES")


def refusal_problem(dialect: str, answer: httpx.Response) -> str | None:
    """Why `answer` is not the dialect's refusal of a client outside its policy."""
    body = answer.json()
    expected: dict[str, tuple[int, bool]] = {
        "delayjob": (403, body.get("code") == "forbidden"
                     and str(body.get("message")).startswith("client: ")),
        "dispatchserver": (403, body.get("success") is False and body.get("resultValue") is None
                           and str(body.get("error")).startswith("client: ")),
        "kubernetes": (403, body.get("code") == 403 and body.get("data") is None
                       and str(body.get("cause")).startswith("client: ")),
        "qschedule": (401, body == {"ret": False, "message": "授权失败"}),
        "sentinel": (401, body.get("code") == 1 and body.get("data") is None
                     and body.get("field") in ("appName", "appToken")),
    }
    status, shaped = expected[dialect]
    if answer.status_code != status or not shaped:
        return f"want {status} in the {dialect} envelope, got {answer.status_code} {answer.text}"
    return None


@dataclass
class World:
    server: RunningServer
    qschedule_token: str
    sentinel_key: str


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_server(tmp_path / "db.sqlite") as running:
        answer = await running.client.post("/v1/apps", json={
            "name": "team", "namespaces": ["team", "team-*", "dispatch:team:*"]})
        assert answer.status_code == 201
        for dialect, namespace in (("delayjob", "team-dj"), ("delayjob-grpc", "team-dj"),
                                   ("dispatchserver", "dispatch:team:"),
                                   ("kubernetes", "team-k8s")):
            answer = await running.client.post("/v1/apps/team/admission", json={
                "dialect": dialect, "network": f"{INSIDE}/32", "namespace": namespace})
            assert answer.status_code == 201, answer.text
        answer = await running.client.post("/v1/apps/team/qschedule",
                                           json={"id": 5, "name": "team-qs"})
        qschedule_token = answer.json()["token"]
        answer = await running.client.post("/v1/apps/team/sentinel-key", json={})
        assert answer.status_code == 201, answer.text
        yield World(running, qschedule_token, answer.json()["app_key"])


def spec_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, ops in spec["paths"].items()
                  for method in ops if not path.startswith("/v1") and path not in OPEN_PATHS)


async def call(server: RunningServer, source: str, method: str, path: str,
               headers: dict[str, str], form: dict[str, str] | None = None) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=server.base_url, transport=transport,
                                 headers=headers, timeout=10) as client:
        if form is not None:  # Sentinel's clients post forms
            return await client.request(method, url, data=form)
        if method in ("GET", "DELETE"):
            return await client.request(method, url)
        return await client.request(method, url, json={})


def sentinel_callers(key: str) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(outsiders, insiders) of the Sentinel dialect: forms with each kind of appToken."""
    now = int(time.time())
    good = {"appName": "team", "appToken": app_token(key, now), "user": "matrix"}
    outsiders = {
        "no token": {"appName": "team", "user": "matrix"},
        "forged token": good | {"appToken": app_token("not-the-key-of-team-at-all", now)},
        "stale token": good | {"appToken": app_token(key, now - 600)},
        "unknown app": good | {"appName": "nobody"},
    }
    return outsiders, {"token": good}


async def test_every_dialect_path_refuses_outsiders_and_admits_insiders(world: World) -> None:
    server, token = world.server, world.qschedule_token
    spec = (await server.client.get("/openapi.json")).json()
    operations = spec_operations(spec)
    dialects = {dialect_of(path) for _, path in operations}
    assert dialects == {*NETWORK_DIALECTS, "qschedule", "open", "sentinel"}
    problems: list[str] = []
    for method, path in operations:
        dialect = dialect_of(path)
        if dialect == "sentinel":
            problems += await sentinel_problems(server, world.sentinel_key, method, path)
            continue
        outsiders: dict[str, tuple[str, dict[str, str]]]
        insiders: dict[str, tuple[str, dict[str, str]]]
        if dialect in NETWORK_DIALECTS:
            outsiders = {"outside": (OUTSIDE, {})}
            insiders = {"inside": (INSIDE, {})}
        else:
            outsiders = {"no token": (INSIDE, {}),
                         "wrong token": (INSIDE, {"Q-Server-Token": "not-a-known-token"})}
            insiders = {"token": (OUTSIDE, {"Q-Server-Token": token})}
        if dialect == "open":
            insiders, outsiders = insiders | outsiders, {}
        for caller, (source, headers) in outsiders.items():
            found = refusal_problem(dialect, await call(server, source, method, path, headers))
            if found:
                problems.append(f"{method} {path} as {caller}: {found}")
        for caller, (source, headers) in insiders.items():
            answer = await call(server, source, method, path, headers)
            if answer.status_code in (401, 403) or answer.status_code >= 500:
                problems.append(f"{method} {path} as {caller}: refused or failed: "
                                f"{answer.status_code} {answer.text}")
    assert not problems, "\n".join(problems)


async def sentinel_problems(server: RunningServer, key: str, method: str,
                            path: str) -> list[str]:
    outsiders, insiders = sentinel_callers(key)
    problems: list[str] = []
    for caller, form in outsiders.items():
        found = refusal_problem("sentinel", await call(server, INSIDE, method, path, {}, form))
        if found:
            problems.append(f"{method} {path} as {caller}: {found}")
    for caller, form in insiders.items():
        answer = await call(server, OUTSIDE, method, path, {}, form)
        if answer.status_code in (401, 403) or answer.status_code >= 500:
            problems.append(f"{method} {path} as {caller}: refused or failed: "
                            f"{answer.status_code} {answer.text}")
    return problems
