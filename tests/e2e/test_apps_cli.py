"""First start, apps and tokens from the command line, and TLS: real `cronwheel serve`
processes and real `cronwheel` commands, as an operator would run them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trustme

from cronwheel.domain.app_keys import app_token
from tests.e2e.test_cli import cronwheel
from tests.support import free_port


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, port: int, *args: str,
                scheme: str = "http", verify: ssl.SSLContext | bool = False,
                ) -> AsyncIterator[asyncio.subprocess.Process]:
    """`cronwheel serve` with no provisioned admin token: a first start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONWHEEL_")}
    env |= {"CRONWHEEL_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "CRONWHEEL_PORT": str(port), "CRONWHEEL_LOG_LEVEL": "warning",
            "CRONWHEEL_DELAYJOB_GRPC_PORT": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cronwheel", "serve", *args, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(verify=verify) as client:
            while True:
                assert proc.returncode is None, await proc.stderr.read() if proc.stderr else b""
                assert time.monotonic() < deadline, "the server did not become healthy"
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"{scheme}://127.0.0.1:{port}/healthz")
                    if answer.status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 15)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


async def test_first_start_then_apps_and_tokens_from_the_cli(
    tmp_path: Path, config_home: Path
) -> None:
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    async with serve(tmp_path, port):
        written = config_home / "cronwheel" / "tokens" / f"127.0.0.1_{port}"
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
        # no token given: the CLI on this machine finds the one the server wrote
        listed = await cronwheel("apps", "ls", "--json", server=server, token=None)
        assert listed.code == 0, listed.err
        [system] = listed.json()["apps"]
        assert system["name"] == "system" and "default" in system["namespaces"]
        elsewhere = await cronwheel("jobs", "ls", "--server", f"http://localhost:{port}",
                                    token=None)
        assert elsewhere.code == 0, elsewhere.err  # localhost is the same loopback server

        made = await cronwheel("apps", "create", "team", "-n", "team", "-n", "team-*",
                               server=server, token=None)
        assert made.code == 0 and "created app team: team, team-*" in made.out, made.err
        granted = await cronwheel("apps", "grant", "team", "shell", "sql", server=server,
                                  token=None)
        assert granted.out.strip() == "app team may create: shell, sql", granted.err
        await _sentinel_key_from_the_cli(server, written)
        limited = await cronwheel("apps", "limits", "team", "max_jobs=1",
                                  "submits_per_second=50", server=server, token=None)
        assert limited.out.strip() == "app team: max_jobs=1, submits_per_second=50", limited.err
        issued = await cronwheel("tokens", "create", "team", "--role", "operator",
                                 "--label", "ci", server=server, token=None)
        assert issued.code == 0 and "shown once" in issued.err, issued.err
        token = issued.out.strip()
        assert token.startswith("cw_") and "\n" not in token

        # the operator's token: its own namespace yes, another no, apps no
        added = await cronwheel("--token", token, "jobs", "add", "nightly", "-n", "team",
                                "--every", "1h", "--url", "http://127.0.0.1:9/x", server=server)
        assert added.code == 0, added.err
        full = await cronwheel("--token", token, "jobs", "add", "second", "-n", "team",
                               "--every", "1h", "--url", "http://127.0.0.1:9/x", server=server)
        assert full.code == 1 and "its limit max_jobs is 1" in full.err, full.err
        dropped = await cronwheel("apps", "limits", "team", "max_jobs=default", server=server,
                                  token=None)
        assert dropped.out.strip() == "app team: submits_per_second=50", dropped.err
        bad = await cronwheel("apps", "limits", "team", "fires=3", server=server, token=None)
        assert bad.code == 2 and "LIMIT=VALUE" in bad.err
        refused = await cronwheel("--token", token, "jobs", "add", "x", "-n", "default",
                                  "--every", "1h", "--url", "http://127.0.0.1:9/x",
                                  server=server)
        assert refused.code == 1 and "does not belong to app 'team'" in refused.err
        denied = await cronwheel("apps", "ls", server=server, token=token)
        assert denied.code == 1 and "operator token may not" in denied.err
        # a command's own --token is sent, not the admin's token file
        own = await cronwheel("jobs", "ls", "-n", "team", "--token", token, server=server,
                              token=None)
        assert own.code == 0 and "nightly" in own.out, own.err
        theirs = await cronwheel("apps", "ls", "--token", token, server=server, token=None)
        assert theirs.code == 1 and "operator token may not" in theirs.err

        tokens = await cronwheel("tokens", "ls", "team", "--json", server=server, token=None)
        [entry] = tokens.json()["tokens"]
        assert entry["label"] == "ci" and entry["live"] and token not in tokens.out
        revoked = await cronwheel("tokens", "revoke", "team", entry["prefix"], server=server,
                                  token=None)
        assert revoked.code == 0, revoked.err
        after = await cronwheel("jobs", "ls", server=server, token=token)
        assert after.code == 1 and "unknown, expired or revoked" in after.err

        # the audit trail: the operator's change and its refusal, the admin's revocation
        trail = await cronwheel("audit", "--app", "team", "--json", server=server, token=None)
        assert trail.code == 0, trail.err
        seen = [(e["action"], e["outcome"], e["namespace"]) for e in trail.json()["entries"]]
        assert ("create_job", "ok", "team") in seen
        assert ("create_job", "forbidden", "default") in seen
        table = await cronwheel("audit", "--action", "revoke_token", server=server, token=None)
        assert table.code == 0 and "revoke_token" in table.out and "ok 200" in table.out, table
        mine = await cronwheel("audit", server=server, token=token)
        assert mine.code == 1 and "unknown, expired or revoked" in mine.err  # admins only

        removed = await cronwheel("apps", "rm", "team", server=server, token=None)
        assert removed.code == 0 and "removed app team" in removed.out
        nobody = await cronwheel("jobs", "ls", server=f"http://127.0.0.1:{free_port()}",
                                 token=None)
        assert nobody.code == 2  # another address: no token file, and nobody answers


async def test_serve_terminates_tls_with_the_given_certificate(
    tmp_path: Path, config_home: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(chain))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    port = free_port()
    async with serve(tmp_path, port, "--tls-cert", str(chain), "--tls-key", str(key),
                     scheme="https", verify=trust):
        token = (config_home / "cronwheel" / "tokens" / f"127.0.0.1_{port}").read_text().strip()
        async with httpx.AsyncClient(verify=trust) as client:
            answer = await client.get(f"https://127.0.0.1:{port}/v1/whoami",
                                      headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200 and answer.json()["role"] == "admin"
            cluster = await client.get(f"https://127.0.0.1:{port}/v1/cluster",
                                       headers={"Authorization": f"Bearer {token}"})
            assert cluster.json()["nodes"][0]["address"].startswith("https://")
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer on a TLS port
                await plain.get(f"http://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
                await untrusting.get(f"https://127.0.0.1:{port}/healthz")


async def test_half_a_tls_configuration_is_refused(tmp_path: Path) -> None:
    result = await cronwheel("serve", "--tls-cert", str(tmp_path / "cert.pem"),
                             "--port", str(free_port()))
    assert result.code == 2 and "both --tls-cert and --tls-key" in result.err


async def test_admission_rules_and_qschedule_apps_from_the_cli(
    tmp_path: Path, config_home: Path
) -> None:
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    async with serve(tmp_path, port):
        made = await cronwheel("apps", "create", "team", "-n", "team-*", server=server,
                               token=None)
        assert made.code == 0, made.err
        admitted = await cronwheel("apps", "admit", "team", "delayjob", "127.0.0.2/32", "-n",
                                   "team-dj", server=server, token=None)
        assert admitted.out.strip() == ("delayjob clients of 127.0.0.2/32 are app team, "
                                        "writing team-dj"), admitted.err
        refused = await cronwheel("apps", "admit", "team", "delayjob", "10.0.0.0/8", "-n",
                                  "billing", server=server, token=None)
        assert refused.code == 1 and "does not own namespace 'billing'" in refused.err
        listed = await cronwheel("apps", "admitted", "team", "--json", server=server,
                                 token=None)
        assert [r["network"] for r in listed.json()["rules"]] == ["127.0.0.2/32"]
        # the rule in force: a delay-job client on 127.0.0.1 is outside it now
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{server}/api/v1/submit/job", json={
                "outJobNo": "j", "triggerTime": 4_000_000_000, "callbackProtocol": "LOG",
                "callbackEndpoint": "LOG"})
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
        gone = await cronwheel("apps", "unadmit", "team", "delayjob", "127.0.0.2/32",
                               server=server, token=None)
        assert gone.code == 0, gone.err

        issued = await cronwheel("apps", "qschedule", "add", "team", "--id", "7", "--name",
                                 "team-qs", server=server, token=None)
        assert issued.code == 0 and "shown once" in issued.err, issued.err
        qs_token = issued.out.strip()
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{server}/api2/jobs/none.do",
                                      headers={"Q-Server-Token": qs_token})
        assert answer.status_code == 404  # admitted: the job is just not there
        apps = await cronwheel("apps", "qschedule", "ls", "team", server=server, token=None)
        assert "team-qs" in apps.out and qs_token not in apps.out
        removed = await cronwheel("apps", "qschedule", "rm", "team", "7", server=server,
                                  token=None)
        assert removed.code == 0, removed.err


async def _sentinel_key_from_the_cli(server: str, token_file: Path) -> None:
    """The server key was made at first start beside the token file (0600); an appKey set
    from the CLI is shown once and admits a Sentinel request signed with it."""
    key_file = token_file.with_name(f"{token_file.name}.secret-key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    keyed = await cronwheel("apps", "sentinel-key", "team", server=server, token=None)
    assert keyed.code == 0 and "shown once" in keyed.out, keyed.err
    app_key = keyed.out.strip().splitlines()[-1]
    assert len(app_key) == 32 and app_key not in key_file.read_text()
    form = {"appName": "team", "appToken": app_token(app_key, int(time.time())),
            "user": "cli", "parameters": '{"taskId": 1}'}
    async with httpx.AsyncClient(base_url=server) as client:
        answer = (await client.post("/api/task/query/status", data=form)).json()
    assert (answer["code"], answer["field"]) == (1, "taskId")  # admitted; no such task
    removed = await cronwheel("apps", "sentinel-key", "team", "--remove", server=server,
                              token=None)
    assert removed.code == 0, removed.err
    async with httpx.AsyncClient(base_url=server) as client:
        answer = (await client.post("/api/task/query/status", data=form)).json()
    assert (answer["code"], answer["field"]) == (1, "appName")
