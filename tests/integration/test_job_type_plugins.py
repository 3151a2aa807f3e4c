"""The server finds job-type plugins when it starts and checks worker specs with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins import install_plugin
from tests.servers import running_server


def _job(job_type: str, spec: dict[str, object]) -> dict[str, object]:
    return {"key": f"{job_type}-job", "schedule": {"kind": "once", "after": 3600},
            "target": {"kind": "worker", "type": job_type, "group": "etl", "spec": spec}}


async def test_a_plugin_installed_before_start_up_checks_its_specs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "site"
    plugins.mkdir()
    install_plugin(plugins)
    monkeypatch.syspath_prepend(str(plugins))
    async with running_server(tmp_path / "cronwheel.db", run_engine=False) as server:
        made = await server.client.post("/v1/jobs", json=_job("echo", {"text": "hi"}))
        assert made.status_code == 201, made.text
        assert made.json()["target"]["spec"] == {"text": "hi"}
        bad = await server.client.post("/v1/jobs", json=_job("echo", {"text": 5}))
        assert bad.status_code == 422, bad.text
        assert "target.spec.text" in bad.text
        # the built-in types are still there beside it
        shell = await server.client.post("/v1/jobs", json=_job("shell", {"command": "true"}))
        assert shell.status_code == 201, shell.text


async def test_without_the_plugin_its_type_is_a_command_type(tmp_path: Path) -> None:
    """A type the server does not have is one a worker may run with a command line
    (docs/workers.md): its spec must be a command type's, and the error says why."""
    async with running_server(tmp_path / "cronwheel.db", run_engine=False) as server:
        refused = await server.client.post("/v1/jobs", json=_job("rsync", {"text": "hi"}))
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "target.spec.text"
        assert "shell" in refused.text and "command type" in refused.text
        badly_named = await server.client.post("/v1/jobs", json=_job("Rsync!", {}))
        assert badly_named.status_code == 422, badly_named.text
        assert badly_named.json()["error"]["field"] == "target.type"
