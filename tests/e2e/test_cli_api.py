"""The CLI covers the API: every target kind and policy on `jobs add` (or a job file),
`jobs delete`, the token sent as the client finds it, and shell completion."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.e2e.test_cli import console_script, cronwheel
from tests.receivers import HttpReceiver
from tests.servers import RunningServer

FAR = ("--at", "2099-01-01T00:00:00Z")


async def _added(server: RunningServer, *args: str) -> dict[str, object]:
    result = await cronwheel("jobs", "add", *args, "--json", server=server.base_url)
    assert result.code == 0, result.err
    job: dict[str, object] = result.json()
    return job


async def test_add_makes_every_kind_of_target(server: RunningServer) -> None:
    worker = await _added(server, "w", *FAR, "--command", "echo hi", "--group", "batch",
                          "--route", "least-busy", "--timeout", "60")
    assert worker["target"] == {"kind": "worker", "type": "shell", "group": "batch",
                                "route": "least-busy", "spec": {"command": "echo hi", "env": {}},
                                "timeout": 60.0}
    typed = await _added(server, "s", *FAR, "--worker", "http",
                         "--spec", '{"url": "http://127.0.0.1:9/x"}')
    assert typed["target"]["type"] == "http"  # type: ignore[index]
    tcp = await _added(server, "t", *FAR, "--tcp", "127.0.0.1:7000")
    assert (tcp["target"]["kind"], tcp["target"]["port"]) == ("tcp", 7000)  # type: ignore[index]
    grpc = await _added(server, "g", *FAR, "--grpc", "127.0.0.1:50051")
    assert grpc["target"]["address"] == "127.0.0.1:50051"  # type: ignore[index]
    kafka = await _added(server, "k", *FAR, "--kafka", "127.0.0.1:9092/orders")
    assert kafka["target"]["topic"] == "orders"  # type: ignore[index]
    two = await cronwheel("jobs", "add", "x", *FAR, "--tcp", "h:1", "--grpc", "h:2",
                          server=server.base_url)
    assert two.code == 2 and "exactly one target" in two.err


async def test_add_sets_every_policy(server: RunningServer) -> None:
    job = await _added(server, "p", "--every", "1h", "--url", "http://127.0.0.1:9/x",
                       "--misfire", "skip", "--misfire-grace", "5", "--concurrency", "forbid",
                       "--max-attempts", "5", "--backoff", "2", "--max-backoff", "60",
                       "--alert-after", "3", "--alert-webhook", "http://127.0.0.1:9/alert")
    assert job["misfire"] == {"policy": "skip", "grace": 5.0}
    assert job["concurrency"] == "forbid"
    retry = job["retry"]
    assert isinstance(retry, dict)
    assert (retry["max_attempts"], retry["initial_backoff"], retry["max_backoff"]) == (5, 2, 60)
    assert job["alert"] == {"after": 3, "webhook": "http://127.0.0.1:9/alert"}
    shown = await cronwheel("jobs", "show", "p", server=server.base_url)
    assert "forbid" in shown.out and "after 3 failed runs" in shown.out
    half = await cronwheel("jobs", "add", "q", "--every", "1h", "--url", "http://a/",
                           "--alert-after", "3", server=server.base_url)
    assert half.code == 2 and "--alert-webhook" in half.err


async def test_add_from_a_file_with_options_over_it(
    server: RunningServer, tmp_path: Path
) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({
        "key": "from-file", "namespace": "ops",
        "schedule": {"kind": "cron", "expr": "0 3 * * *", "tz": "UTC"},
        "target": {"kind": "http", "url": "http://127.0.0.1:9/x"},
        "payload": {"v": 1}, "retry": {"max_attempts": 7, "multiplier": 3},
    }))
    job = await _added(server, "-f", str(path), "--payload", '{"v": 2}', "--max-attempts", "2")
    assert (job["namespace"], job["key"], job["payload"]) == ("ops", "from-file", {"v": 2})
    retry = job["retry"]
    assert isinstance(retry, dict) and (retry["max_attempts"], retry["multiplier"]) == (2, 3)
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2]")
    refused = await cronwheel("jobs", "add", "-f", str(broken), server=server.base_url)
    assert refused.code == 2 and "one JSON object" in refused.err


async def test_delete_keeps_the_runs_unless_asked(server: RunningServer) -> None:
    base = server.base_url
    await _added(server, "d1", *FAR, "--url", "http://127.0.0.1:9/x")
    run = (await cronwheel("jobs", "trigger", "d1", "--json", server=base)).json()
    deleted = await cronwheel("jobs", "delete", "d1", server=base)
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == "deleted job default/d1; its runs kept until retention"
    assert (await cronwheel("runs", "show", run["id"], server=base)).code == 0
    assert (await cronwheel("jobs", "show", "d1", server=base)).code == 1

    await _added(server, "d2", *FAR, "--url", "http://127.0.0.1:9/x")
    run = (await cronwheel("jobs", "trigger", "d2", "--json", server=base)).json()
    gone = await cronwheel("jobs", "delete", "d2", "--delete-runs", server=base)
    assert gone.out.strip() == "deleted job default/d2; its runs deleted"
    assert (await cronwheel("runs", "show", run["id"], server=base)).code == 1
    again = await cronwheel("jobs", "delete", "d2", server=base)
    assert again.code == 1 and "no job 'd2'" in again.err


async def test_the_token_is_sent_from_the_option_the_environment_or_the_file(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    """The receiver stands in for a server that checks tokens: it records the header."""
    port = receiver.url.split(":")[2].split("/")[0]
    tokens = tmp_path / "cronwheel" / "tokens"
    tokens.mkdir(parents=True)
    (tokens / f"127.0.0.1_{port}").write_text("cw_1_fromfile\n")
    base = f"http://127.0.0.1:{port}"
    home = {"XDG_CONFIG_HOME": str(tmp_path)}
    await cronwheel("jobs", "show", "k", "--server", base, "--token", "cw_1_flag",
                    env_extra=home | {"CRONWHEEL_TOKEN": "cw_1_env"})
    await cronwheel("jobs", "show", "k", "--server", base,
                    env_extra=home | {"CRONWHEEL_TOKEN": "cw_1_env"})
    await cronwheel("jobs", "show", "k", "--server", base, token=None, env_extra=home)
    sent = [r.headers.get("Authorization") for r in await receiver.wait_for(3)]
    assert sent == ["Bearer cw_1_flag", "Bearer cw_1_env", "Bearer cw_1_fromfile"]


async def test_bash_completion_completes_commands_and_choices() -> None:
    def completing(line: str) -> dict[str, str]:
        words = line.split(" ")
        return {"_CRONWHEEL_COMPLETE": "complete_bash", "COMP_WORDS": line,
                "COMP_CWORD": str(len(words) - 1)}

    command = await cronwheel(env_extra=completing("cronwheel jobs del"))
    assert command.out.split() == ["delete"]
    choice = await cronwheel(env_extra=completing("cronwheel jobs add k --concurrency f"))
    assert choice.out.split() == ["forbid"]
    # What a bash user puts in ~/.bashrc. Typer picks the script by the calling shell, so it
    # must be asked from bash itself (CI's own shell is sh, which it does not support).
    loaded = await asyncio.create_subprocess_exec(
        "bash", "-c", 'eval "$("$0" --show-completion)" && complete -p cronwheel',
        console_script(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(loaded.communicate(), 20)
    assert loaded.returncode == 0, err.decode()
    assert out.decode().split()[-2:] == ["_cronwheel_completion", "cronwheel"]


async def test_cluster_shows_each_node_state(server: RunningServer) -> None:
    shown = await cronwheel("cluster", server=server.base_url)
    assert shown.code == 0, shown.err
    [row] = [line for line in shown.out.splitlines()
             if line.strip().startswith(server.node.owner)]  # its row, not the title
    assert "│ alive " in row


async def test_runs_log_follow_prints_the_output_as_it_comes(server: RunningServer) -> None:
    from tests.e2e.test_workers import finished, submit, workers

    async with workers(server, "follower"):
        run = await submit(server, "slow", "shell",
                           {"command": "for i in 1 2 3; do echo line $i; sleep 0.4; done"})
        followed = await cronwheel("runs", "log", run, "--follow", server=server.base_url)
        assert followed.code == 0, followed.err
        assert followed.out.splitlines() == ["line 1", "line 2", "line 3"]
        assert (await finished(server, run))["state"] == "succeeded"
