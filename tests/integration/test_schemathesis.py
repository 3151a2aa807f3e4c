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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CheckContext
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from cronwheel.api.app import create_app
from cronwheel.runtime import Node
from cronwheel.settings import Settings
from tests.support import ADMIN_HEADERS, TEST_ADMIN_TOKEN

pytestmark = pytest.mark.schemathesis

LONG = os.environ.get("CRONWHEEL_FUZZ_LONG") == "1"
EXAMPLES = 300 if LONG else 5
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
PHASES = list(Phase) if LONG else [Phase.generate]
LEASE_WAIT = 0.1  # seconds: a lease holds the request for up to `wait` when nothing is due

# Not opened before the fixture below makes its directory: collecting costs no database.
DATABASE = Path(tempfile.gettempdir()) / f"cronwheel-fuzz-{uuid.uuid4().hex}" / "cronwheel.db"
_config = Settings(database_url=f"sqlite:///{DATABASE}", delayjob_grpc_port=0,
                   allowed_hosts=[asgi.HOST])
# A node that never runs its engine: fuzzed jobs must not call the hosts they name.
_app = create_app(node=Node(_config, run_engine=False))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app, reached as a client on loopback is (the test client names no address), so
    the dialects' default admission (loopback only) lets the fuzzer through."""
    if scope["type"] == "http":
        scope = scope | {"client": LOOPBACK_CLIENT}
    await _app(scope, receive, send)


schema = schemathesis.openapi.from_dict(_app.openapi())
schema.app = app
PATHS = {path: re.compile("^" + re.sub(r"\{[^}]+\}", ".+", re.escape(path).replace(r"\{", "{")
                                        .replace(r"\}", "}")) + "$")
         for path in schema.raw_schema["paths"]}


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
    documented = set(schema.raw_schema["paths"][case.operation.path])
    assert documented <= listed, f"Allow {allow!r} misses documented {documented - listed}"
    url = case.formatted_path
    possible = {m for path, pattern in PATHS.items() if pattern.match(url)
                for m in schema.raw_schema["paths"][path]}
    assert listed <= possible | {"head"}, f"Allow {allow!r} lists {listed - possible}"
    return True


def shorten_lease(case: Any) -> None:
    """A lease with nothing due holds the request for `wait` seconds (up to 30): kept short,
    or a handful of leases would take the fuzzer's whole budget."""
    if case.path.endswith("/lease") and isinstance(case.body, dict):
        wait = case.body.get("wait")
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > LEASE_WAIT:
            case.body["wait"] = LEASE_WAIT


REPLACED = [positive_data_acceptance, allow_header_conformance]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=PHASES,
                suppress_health_check=list(HealthCheck))
V1 = schema.include(path_regex="^/v1/")  # the routes that take cronwheel tokens


def send(case: Any, token: str | None) -> Any:
    """Call with exactly this credential (none for None), whatever the case generated."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers
    shorten_lease(case)
    return case.call_and_validate(excluded_checks=REPLACED)


@pytest.fixture(scope="module")
def viewer_token() -> str:
    """A viewer of the `system` app, which owns the default namespace."""
    with asgi.get_client(app) as client:
        made = client.post("/v1/apps/system/tokens", json={"role": "viewer"},
                           headers=ADMIN_HEADERS)
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


@schema.parametrize()
@FUZZ
def test_as_admin(case: Any) -> None:
    send(case, TEST_ADMIN_TOKEN)


@V1.parametrize()
@FUZZ
def test_as_viewer(case: Any, viewer_token: str) -> None:
    """Reads are the viewer's; every write is a 403 before its body is looked at."""
    response = send(case, viewer_token)
    if case.method.upper() != "GET":
        assert response.status_code == 403, (case.method, case.formatted_path, response.text)


@V1.parametrize()
@FUZZ
def test_without_a_token(case: Any) -> None:
    response = send(case, None)
    assert response.status_code == 401, (case.method, case.formatted_path, response.text)
    assert response.headers.get("www-authenticate") == "Bearer"


class Walk(schema.as_state_machine()):  # type: ignore[misc]
    """Chains calls over the spec's links (api/links.py): a job created, read, changed,
    triggered and deleted, a worker registered and used, an app made and given tokens."""

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        case.headers = {**(case.headers or {}), **ADMIN_HEADERS}
        print("STEP", case.method, case.formatted_path, case.query)
        shorten_lease(case)
        return {}

    def validate_response(self, response: Any, case: Any,
                          additional_checks: Any = None, **kwargs: Any) -> None:
        case.validate_response(response, excluded_checks=REPLACED,
                               transport_kwargs=kwargs or None, recorder=self.recorder)


def test_stateful() -> None:
    Walk.run(settings=settings(
        max_examples=200 if LONG else 12, stateful_step_count=20 if LONG else 6,
        deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)))
