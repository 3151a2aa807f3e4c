"""The executor with real child processes: outcomes, environment, timeouts, kills, big output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest

from cronwheel.jobtypes.command import parse_command_type
from cronwheel.jobtypes.registry import builtin_job_types
from cronwheel.worker.executor import Execution, group_members
from tests.worker.support import Recorder, execute, make_task


def _alive(pid: int) -> bool:
    """A process that is not a zombie (an orphan's zombie waits for init, not for us)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(b")") + 2:].split()[0] not in (b"Z", b"X")


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not group_members(pgid)  # only zombies are left, awaiting their reaper


async def test_a_command_that_succeeds() -> None:
    ran = await execute(make_task("shell", {"command": "echo out; echo err >&2"}))
    assert ran.outcome.to_json() == {"outcome": "success", "exit_code": 0}
    assert ran.log.text == "out\nerr\n"
    assert ran.result.json() == {"exit_code": 0}


async def test_a_command_that_fails_reports_its_exit_code() -> None:
    ran = await execute(make_task("shell", {"command": "echo failing; exit 3"}))
    assert ran.outcome.to_json() == {"outcome": "failure", "exit_code": 3}
    assert ran.result.json() == {"exit_code": 3}


async def test_death_by_signal_is_a_failure_with_the_shell_exit_code() -> None:
    ran = await execute(make_task("shell", {"command": "kill -9 $$"}))
    assert ran.outcome.outcome == "failure"
    assert ran.outcome.exit_code == 137
    assert "SIGKILL" in (ran.outcome.error or "")


async def test_cwd_and_env_are_honoured(tmp_path: Path) -> None:
    spec = {"command": 'pwd; echo "$GREETING"', "cwd": str(tmp_path),
            "env": {"GREETING": "hi there"}}
    ran = await execute(make_task("shell", spec))
    assert ran.outcome.outcome == "success"
    assert ran.log.text == f"{tmp_path}\nhi there\n"


async def test_a_script_runs_under_its_interpreter() -> None:
    spec = {"script": "import sys\nprint('from', sys.argv[0].rsplit('/', 1)[-1])\n",
            "interpreter": "/usr/bin/env python3"}
    ran = await execute(make_task("shell", spec))
    assert ran.outcome.outcome == "success"
    assert ran.log.text == "from script\n"
    bash = await execute(make_task("shell", {"script": "set -e\n[[ 1 == 1 ]] && echo bash"}))
    assert bash.log.text == "bash\n"


async def test_every_task_sees_its_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONWHEEL_WORKER_DATABASES", '{"main": "postgresql://secret@db/x"}')
    task = make_task("shell", {"command": "env | grep ^CRONWHEEL_ | sort"},
                     payload={"invoice": 42})
    ran = await execute(task)
    seen = dict(line.split("=", 1) for line in ran.log.text.splitlines())
    assert seen.items() >= {
        "CRONWHEEL_ATTEMPT": "2", "CRONWHEEL_JOB_KEY": "nightly", "CRONWHEEL_NAMESPACE": "ns",
        "CRONWHEEL_PAYLOAD": '{"invoice":42}', "CRONWHEEL_RUN_ID": "run-1",
        "CRONWHEEL_SCHEDULED_AT": "2024-01-02T03:04:05Z", "CRONWHEEL_TASK_ID": "task-1",
    }.items()
    assert "CRONWHEEL_WORKER_DATABASES" not in seen  # the worker's credentials stay its own


async def test_a_missing_cwd_is_an_error_not_a_failure(tmp_path: Path) -> None:
    ran = await execute(make_task("shell", {"command": "true", "cwd": str(tmp_path / "no")}))
    assert ran.outcome.outcome == "error"
    assert "not a directory" in (ran.outcome.error or "")
    assert "cannot start" in ran.log.text


async def test_an_unknown_type_or_bad_spec_is_an_error() -> None:
    ran = await execute(make_task("teleport", {}))
    assert ran.outcome.outcome == "error"
    assert "teleport" in (ran.outcome.error or "")
    bad = await execute(make_task("shell", {"command": ""}))
    assert bad.outcome.outcome == "error"
    assert (bad.outcome.error or "").startswith("spec.command")


async def test_a_timeout_stops_the_whole_process_tree(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = (f"sleep 300 & echo $! >> {pids}; (sleep 300; true) & echo $! >> {pids}; "
               f"echo $$ >> {pids}; echo started; sleep 300")
    started = time.monotonic()
    ran = await execute(make_task("shell", {"command": command}, timeout=1.0))
    elapsed = time.monotonic() - started
    assert ran.outcome.outcome == "timeout"
    assert 1.0 <= elapsed < 3.5
    assert "started" in ran.log.text
    assert "timed out after 1 s" in ran.log.text
    assert ran.result.size == 0
    assert ran.execution.pgid is not None
    assert _group_gone(ran.execution.pgid)
    launched = [int(p) for p in pids.read_text().split()]
    assert len(launched) == 3
    assert not any(_alive(pid) for pid in launched)


async def test_a_tree_that_ignores_sigterm_gets_sigkill() -> None:
    command = "trap '' TERM; sleep 300 & sleep 300"
    started = time.monotonic()
    ran = await execute(make_task("shell", {"command": command}, timeout=0.5),
                        kill_grace_s=0.5)
    assert ran.outcome.outcome == "timeout"
    assert time.monotonic() - started < 3.0
    assert ran.execution.pgid is not None
    assert _group_gone(ran.execution.pgid)


async def test_a_kill_stops_the_task_within_a_second() -> None:
    log, result = Recorder(), Recorder()
    task = make_task("shell", {"command": "echo started; sleep 300 & sleep 300"})
    execution = Execution(task, log, result)
    running = asyncio.create_task(execution.run())
    await asyncio.wait_for(log.arrived.wait(), 5)
    asked = time.monotonic()
    execution.kill()
    outcome = await running
    assert time.monotonic() - asked < 1.0
    assert outcome.outcome == "killed"
    assert execution.pgid is not None
    assert _group_gone(execution.pgid)


async def test_cancelling_the_execution_still_stops_the_tree() -> None:
    log = Recorder()
    execution = Execution(make_task("shell", {"command": "echo go; sleep 300 & sleep 300"}),
                          log, Recorder())
    running = asyncio.create_task(execution.run())
    await asyncio.wait_for(log.arrived.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert execution.pgid is not None
    deadline = time.monotonic() + 2
    while not _group_gone(execution.pgid):
        assert time.monotonic() < deadline, "the task's processes survived the cancel"
        await asyncio.sleep(0.05)


async def test_a_kill_before_the_start_still_kills() -> None:
    execution = Execution(make_task("shell", {"command": "sleep 300"}), Recorder(), Recorder())
    execution.kill()
    outcome = await asyncio.wait_for(execution.run(), 5)
    assert outcome.outcome == "killed"


async def test_processes_left_behind_by_a_finished_task_are_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    ran = await execute(make_task("shell", {
        "command": f"sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}; echo done"}))
    assert ran.outcome.outcome == "success"
    assert ran.log.text == "done\n"
    assert not _alive(int(pid_file.read_text()))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Bring the peak RSS (VmHWM) down to the current one, so the next peak is ours."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
async def test_100_mb_of_output_streams_through_in_bounded_memory() -> None:
    _reset_peak()
    before = _status_kib("VmRSS")
    command = "head -c 100000000 /dev/zero | tr '\\0' a"
    log = Recorder(keep=False)
    execution = Execution(make_task("shell", {"command": command}), log, Recorder())
    outcome = await execution.run()
    growth_mb = (_status_kib("VmHWM") - before) / 1024
    assert outcome.outcome == "success"
    assert log.size == 100_000_000
    assert log.writes >= 100_000_000 // (64 * 1024)  # streamed in chunks, not gathered
    assert growth_mb < 50, f"the worker grew by {growth_mb:.0f} MB"


# -- stdout as the result ("stdout": "result") ------------------------------------------------


async def test_stdout_as_the_result_splits_it_from_stderr() -> None:
    command = "for i in 1 2 3; do echo out $i; echo err $i >&2; done; exit 4"
    ran = await execute(make_task("shell", {"command": command, "stdout": "result"}))
    assert ran.outcome.to_json() == {"outcome": "failure", "exit_code": 4}  # the exit code
    assert ran.result.text == "out 1\nout 2\nout 3\n"  # exactly stdout, no {"exit_code"}
    assert ran.log.text == "err 1\nerr 2\nerr 3\n"


async def test_stdout_as_the_result_for_a_command_type(tmp_path: Path) -> None:
    types = builtin_job_types()
    types.add_commands(dict([parse_command_type("hive=/bin/sh {script}")]))
    spec = {"content": "echo rows; echo progress >&2", "stdout": "result"}
    log, result = Recorder(), Recorder()
    outcome = await Execution(make_task("hive", spec), log, result, job_types=types).run()
    assert outcome.to_json() == {"outcome": "success", "exit_code": 0}
    assert (result.text, log.text) == ("rows\n", "progress\n")
    default = Recorder()
    spec.pop("stdout")
    await Execution(make_task("hive", spec), default, Recorder(), job_types=types).run()
    assert default.text == "rows\nprogress\n"  # without the option: both in the log


async def test_a_large_stdout_streams_to_the_live_result_sink() -> None:
    command = "head -c 3000000 /dev/zero | tr '\\0' a; echo done >&2"
    log, result, live = Recorder(), Recorder(), Recorder()
    outcome = await Execution(make_task("shell", {"command": command, "stdout": "result"}),
                              log, result, live_result=live).run()
    assert outcome.outcome == "success"
    assert live.size == 3_000_000 and live.writes > 1 and set(live.text) == {"a"}
    assert result.size == 0  # nothing held back for the finish call
    assert log.text == "done\n"


async def test_a_timed_out_split_task_says_so_in_its_log() -> None:
    task = make_task("shell", {"command": "echo partial; sleep 30", "stdout": "result"},
                     timeout=0.5)
    ran = await execute(task)
    assert ran.outcome.outcome == "timeout"
    assert ran.result.text == "partial\n"
    assert "timed out after 0.5 s" in ran.log.text


async def test_the_stdout_option_is_checked() -> None:
    bad = await execute(make_task("shell", {"command": "true", "stdout": "both"}))
    assert bad.outcome.outcome == "error"
    assert (bad.outcome.error or "").startswith("spec.stdout")
