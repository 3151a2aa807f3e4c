"""Schemathesis over the OpenAPI spec, with authentication on: no 5xx, no undocumented status.

Every operation the app documents is fuzzed with every check schemathesis has (a new route
is picked up from the spec without touching this file), in process over ASGI, against a
node on a real SQLite file. `CRONWHEEL_FUZZ_LONG=1` runs many more examples and steps.

Two checks are replaced, each for a reason the spec cannot express:

* `positive_data_acceptance` expects every schema-valid request to succeed. The server's
  rules go beyond JSON Schema (a cron line must parse, a URL host must pass the target
  guard, a key named in a path must exist), so a schema-valid request is rightly a 4xx; the
  status checks still hold those 4xx to the documented ones.
* `allow_header_conformance` expects a 405's `Allow` to list exactly the methods of the
  spec's path. Job keys may contain `/`, so `/v1/jobs/a/alerts` is also the path of job
  `a/alerts` and `DELETE` on it works: `Allow` truthfully lists it. `allow_lists_methods`
  below checks what is true instead: every 405 has `Allow`, listing every documented method
  of the path and only methods some documented path matching the URL takes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from pydantic import SecretStr
from schemathesis.checks import CheckContext
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from cronwheel.api.app import create_app
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from tests.support import ADMIN_HEADERS, TEST_ADMIN_TOKEN

pytestmark = pytest.mark.schemathesis

LONG = os.environ.get("CRONWHEEL_FUZZ_LONG") == "1"
EXAMPLES = int(os.environ.get("CRONWHEEL_FUZZ_EXAMPLES") or (300 if LONG else 5))
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
PHASES = list(Phase) if LONG else [Phase.generate]
LATER = {"kind": "once", "at": "2099-01-01T00:00:00Z"}
CALLBACK = {"kind": "http", "url": "http://127.0.0.1:9/callback"}  # never called: no engine
LEASE_WAIT = 0.1  # seconds: a lease holds the request for up to `wait` when nothing is due

# Not opened before the fixture below makes its directory: collecting costs no database.
DATABASE = Path(tempfile.gettempdir()) / f"cronwheel-fuzz-{uuid.uuid4().hex}" / "cronwheel.db"


def node_app(database: Path) -> Any:
    """The app over a node on `database` that never runs its engine (fuzzed jobs must not
    call the hosts they name), reached as a client on loopback is: the test client names no
    address, and the dialects' default admission (loopback only) should let the fuzzer in.
    Built at import, before the session fixture sets CRONWHEEL_ADMIN_TOKEN: named here."""
    config = Settings(database_url=f"sqlite:///{database}", delayjob_grpc_port=0,
                      allowed_hosts=[asgi.HOST], admin_token=SecretStr(TEST_ADMIN_TOKEN))
    inner = create_app(node=Node(config, run_engine=False))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = scope | {"client": LOOPBACK_CLIENT}
        await inner(scope, receive, send)

    app.inner = inner  # type: ignore[attr-defined]
    return app


app = node_app(DATABASE)
walk_app = node_app(DATABASE.with_name("walk.db"))  # the stateful walk starts empty
SPEC = app.inner.openapi()
V1_ONLY = SPEC | {"paths": {p: ops for p, ops in SPEC["paths"].items() if p.startswith("/v1/")}}
TOKENS: dict[str, str] = {"admin": TEST_ADMIN_TOKEN}  # the viewer's is made by a fixture


def bearer(role: str) -> type:
    """An auth provider sending `role`'s token. Given as the test's auth, schemathesis knows
    the credential is the caller's (`ignored_auth` then probes without it) and generates
    no token of its own in its place."""

    class Bearer:
        def get(self, case: Any, ctx: Any) -> str:
            # explicit examples are made at collection, before the viewer's token exists:
            # they carry a stand-in that `send` replaces
            return TOKENS.get(role, f"<{role}>")

        def set(self, case: Any, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    Bearer.__name__ = f"{role.capitalize()}Bearer"
    return Bearer


def fuzzed(spec: dict[str, Any], role: str | None, to: Any = app) -> OpenApiSchema:
    """The spec, sent to the app `to` in process, with `role`'s token (None: none)."""
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.app = to
    if role is not None:  # for the state machine; the parametrized tests name theirs
        loaded.auth(refresh_interval=None)(bearer(role))
    return loaded


schema = fuzzed(SPEC, "admin")
V1_VIEWER = fuzzed(V1_ONLY, "viewer")
V1_NOBODY = fuzzed(V1_ONLY, None)
PATHS = {path: re.compile("^" + re.sub(r"\\\{[^}]+\\\}", ".+", re.escape(path)) + "$")
         for path in SPEC["paths"]}


@pytest.fixture(scope="module", autouse=True)
def node_database() -> Iterator[None]:
    """The node starts on the first request (schemathesis runs the app's lifespan) and stops
    here, with its database."""
    DATABASE.parent.mkdir()
    try:
        yield
    finally:
        asgi.shutdown_lifespans()
        shutil.rmtree(DATABASE.parent, ignore_errors=True)


@schemathesis.check
def allow_lists_methods(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """A 405 carries `Allow` with every documented method of the path, and only methods
    that some documented path matching the URL takes."""
    if response.status_code != 405:
        return None
    allow = response.headers.get("allow")
    allow = allow[0] if isinstance(allow, list) else allow
    assert allow, "a 405 without Allow"
    listed = {m.strip().lower() for m in allow.split(",") if m.strip()}
    documented = set(SPEC["paths"][case.operation.path])
    assert documented <= listed, f"Allow {allow!r} misses documented {documented - listed}"
    url = case.formatted_path
    possible = {m for path, pattern in PATHS.items() if pattern.match(url)
                for m in SPEC["paths"][path]}
    assert listed <= possible | {"head"}, f"Allow {allow!r} lists {listed - possible}"
    return True


def shorten_lease(case: Any) -> None:
    """A lease with nothing due holds the request for `wait` seconds (up to 30): kept short,
    or a handful of leases would take the fuzzer's whole budget."""
    if case.path.endswith("/lease") and isinstance(case.body, dict):
        wait = case.body.get("wait")
        longest = SPEC["components"]["schemas"]["LeaseIn"]["properties"]["wait"]["maximum"]
        # a wait over the maximum stays: it is a negative case, refused at once
        if isinstance(wait, int | float) and not isinstance(wait, bool) and (
                LEASE_WAIT < wait <= longest):
            case.body["wait"] = LEASE_WAIT


def reachable_jobs(case: Any, every: int = 2) -> None:
    """The spec leaves `schedule` and `target` free objects (their many kinds are checked by
    the domain), so generated ones are all refused and nothing behind them is reached: one
    job in `every` (chosen by its key, so runs repeat) gets a valid schedule and target and
    keeps its other generated fields."""
    if case.method.upper() != "POST" or case.path not in ("/v1/jobs", "/v1/jobs/batch"):
        return
    body = case.body if isinstance(case.body, dict) else {}
    jobs = body.get("jobs") if case.path.endswith("/batch") else [body]
    for job in jobs if isinstance(jobs, list) else []:
        if isinstance(job, dict) and zlib.crc32(repr(job.get("key")).encode()) % every == 0:
            job |= {"schedule": LATER, "target": CALLBACK}


REPLACED = [positive_data_acceptance, allow_header_conformance]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=PHASES,
                suppress_health_check=list(HealthCheck))


def carried(response: Any, token: str | None) -> bool:
    """Whether the request carried `token` (schemathesis' negative cases drop it)."""
    sent = response.request.headers.get("Authorization")
    return token is not None and sent == f"Bearer {token}"


def send(case: Any, token: str | None) -> Any:
    """Call with every check; the valid token the test's auth sent is never refused."""
    for role, real in TOKENS.items():
        if (case.headers or {}).get("Authorization") == f"Bearer <{role}>":
            case.headers["Authorization"] = f"Bearer {real}"
    shorten_lease(case)
    reachable_jobs(case)
    response = case.call_and_validate(excluded_checks=REPLACED)
    if carried(response, token) and case.path.startswith("/v1/"):
        assert response.status_code != 401, (case.method, case.formatted_path, response.text)
    return response


@pytest.fixture(scope="module")
def viewer_token() -> str:
    """A viewer of the `system` app, which owns the default namespace."""
    with asgi.get_client(app) as client:
        made = client.post("/v1/apps/system/tokens", json={"role": "viewer"},
                           headers=ADMIN_HEADERS)
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    TOKENS["viewer"] = token
    return token


@schema.parametrize()
@schema.auth(bearer("admin"), refresh_interval=None)
@FUZZ
def test_as_admin(case: Any) -> None:
    send(case, TEST_ADMIN_TOKEN)


@V1_VIEWER.parametrize()
@V1_VIEWER.auth(bearer("viewer"), refresh_interval=None)
@FUZZ
def test_as_viewer(case: Any, viewer_token: str) -> None:
    """Reads are the viewer's; every write is a 403 before its body is validated (a body
    that is not JSON at all is refused first: FastAPI decodes it before the role check)."""
    response = send(case, viewer_token)
    if case.method.upper() != "GET" and carried(response, viewer_token):
        unparsed = response.status_code == 422 and "JSON" in response.json()["error"]["message"]
        assert response.status_code == 403 or unparsed, (case.method, case.formatted_path,
                                                          response.text)


@V1_NOBODY.parametrize()
@FUZZ
def test_without_a_token(case: Any) -> None:
    response = send(case, None)
    assert response.status_code == 401, (case.method, case.formatted_path, response.text)
    challenge = response.headers.get("www-authenticate") or [""]
    assert challenge[0].startswith("Bearer"), response.headers


class Walk(fuzzed(V1_ONLY, "admin", walk_app).as_state_machine()):  # type: ignore[misc]
    """Chains calls over the spec's links (api/links.py): a job created, read, changed,
    triggered and deleted, a worker registered and used, an app made and given tokens."""

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        shorten_lease(case)
        reachable_jobs(case, every=1)
        return {}

    def after_call(self, response: Any, case: Any) -> None:
        super().after_call(response, case)
        WALKED.append((case.method.upper(), case.path, response.status_code))

    def validate_response(self, response: Any, case: Any,
                          additional_checks: Any = None, **kwargs: Any) -> None:
        case.validate_response(response, excluded_checks=REPLACED,
                               transport_kwargs=kwargs or None, recorder=self.recorder)


WALKED: list[tuple[str, str, int]] = []  # (method, spec path, status) of every step


def test_stateful() -> None:
    WALKED.clear()
    Walk.run(settings=settings(
        max_examples=200 if LONG else 15, stateful_step_count=20 if LONG else 8,
        deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
        # no shrinking: the node keeps what earlier scenarios made, so a replay differs
        phases=[Phase.explicit, Phase.generate]))
    # the walk was let in: it changed things (which steps succeed depends on the generated
    # data, so no particular one is required)
    assert any(m != "GET" and 200 <= status < 300 for m, _p, status in WALKED), WALKED
