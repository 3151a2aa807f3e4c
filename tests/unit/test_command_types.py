"""Command types (cronwheel.jobtypes.command, cronwheel.domain.command_types): the templates a
worker is given, how a job's content and params fill them, the spec the server checks, and
who may create them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cronwheel.domain.access import Principal, Role, may_use_type, runs_code
from cronwheel.domain.command_types import check_type_name, parse_command_spec
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.tasks import WorkerInfo
from cronwheel.jobtypes import LaunchContext, LaunchError
from cronwheel.jobtypes.command import CommandType, parse_command_type, parse_template
from cronwheel.jobtypes.registry import builtin_job_types
from cronwheel.worker.runner import accepted_types
from cronwheel.worker.settings import (
    COMMAND_TYPES_ENV,
    WorkerSettings,
    parse_command_types,
    parse_types,
)

NASTY = "it's \"quoted\" $(touch /tmp/pwned) `id` ; rm -rf / &&\nsecond line\\"


def _launch(command: str, spec: dict[str, object], scratch: Path) -> list[str]:
    name, template = parse_command_type(f"hive={command}")
    job_type = CommandType(name, template)
    return job_type.launch(job_type.parse(spec, "spec"), LaunchContext(scratch)).argv


class TestTemplates:
    def test_words_are_split_like_a_shell_and_placeholders_filled_inside_them(
        self, tmp_path: Path
    ) -> None:
        argv = _launch("beeline -u 'jdbc:hive2://db:10000/x;a=b' --hivevar day={params.day} "
                       "-f {script}", {"content": "select 1", "params": {"day": "2026-12-01"}},
                       tmp_path)
        assert argv == ["beeline", "-u", "jdbc:hive2://db:10000/x;a=b",
                        "--hivevar", "day=2026-12-01", "-f", str(tmp_path / "content")]

    def test_values_never_add_or_split_words(self, tmp_path: Path) -> None:
        argv = _launch("run --name={params.who} {params.who} {jar}",
                       {"content": f" {NASTY} ", "content_type": "jar",
                        "params": {"who": NASTY}}, tmp_path)
        assert argv == ["run", f"--name={NASTY}", NASTY, NASTY.strip()]

    def test_the_content_goes_to_a_private_file_exactly(self, tmp_path: Path) -> None:
        _launch("cat {script}", {"content": NASTY, "content_type": "script"}, tmp_path)
        written = tmp_path / "content"
        assert written.read_text() == NASTY
        assert stat.S_IMODE(written.stat().st_mode) == 0o600

    def test_braces_content_type_and_a_jar(self, tmp_path: Path) -> None:
        argv = _launch("spark-submit --conf x={{a}} --kind {content_type} {jar}",
                       {"content": "hdfs:///jobs/etl.jar\n", "content_type": "jar"}, tmp_path)
        assert argv == ["spark-submit", "--conf", "x={a}", "--kind", "jar",
                        "hdfs:///jobs/etl.jar"]
        assert not (tmp_path / "content").exists()  # no {script}: no file

    def test_a_task_the_command_cannot_take_ends_in_error(self, tmp_path: Path) -> None:
        with pytest.raises(LaunchError, match=r"needs the param.*day"):
            _launch("beeline --day {params.day} -f {script}", {"content": "x"}, tmp_path)
        with pytest.raises(LaunchError, match="content_type is 'text'"):
            _launch("spark-submit {jar}", {"content": "x.jar"}, tmp_path)

    @pytest.mark.parametrize(("pair", "says"), [
        ("hive", "NAME=COMMAND"),
        ("Hive=beeline -f {script}", "a job type name"),
        ("hive=", "empty"),
        ("hive=beeline -f 'unclosed {script}", "cannot split"),
        ("hive=beeline -e 'select 1'", "never hands over"),
        ("hive=beeline -f {file}", "unknown placeholder {file}"),
        ("hive=beeline -f {params.bad-name} {script}", "unknown placeholder"),
        ("hive=beeline -f {script", "lone '{'"),
        ("hive=beeline -f }{script}", "lone '}'"),
        ("hive={script}", "the program must be named"),
    ])
    def test_a_bad_template_is_refused_when_the_worker_starts(self, pair: str, says: str) -> None:
        with pytest.raises(ValueError) as caught:
            parse_command_type(pair)
        assert says in str(caught.value)

    def test_the_template_is_split_once(self) -> None:
        template = parse_template("beeline -f {script} --x='a b'")
        assert template.placeholders == {"script"}
        assert template.argv({"script": "/s p/ace"}) == ["beeline", "-f", "/s p/ace", "--x=a b"]


class TestSpec:
    def test_a_spec_is_normalised(self) -> None:
        assert parse_command_spec({"content": "select 1"}, "target.spec") == {
            "content": "select 1", "content_type": "text", "params": {}}

    def test_stdout_goes_to_the_log_unless_the_result_is_asked(self) -> None:
        plain = parse_command_spec({"content": "x", "stdout": "log"}, "target.spec")
        assert "stdout" not in plain  # the default is not stored: old specs stay equal
        split = parse_command_spec({"content": "x", "stdout": "result"}, "target.spec")
        assert split["stdout"] == "result"

    @pytest.mark.parametrize(("spec", "field"), [
        ({}, "target.spec.content"),
        ({"content": "  "}, "target.spec.content"),
        ({"content": 5}, "target.spec.content"),
        ({"content": "a\x00b"}, "target.spec.content"),
        ({"content": "x", "content_type": "sql"}, "target.spec.content_type"),
        ({"content": "x", "params": []}, "target.spec.params"),
        ({"content": "x", "params": {"a-b": "1"}}, "target.spec.params"),
        ({"content": "x", "params": {"day": 1}}, "target.spec.params.day"),
        ({"content": "x", "script": "y"}, "target.spec.script"),
        ({"content": "x", "stdout": "stderr"}, "target.spec.stdout"),
    ])
    def test_a_bad_spec_names_its_field(self, spec: dict[str, object], field: str) -> None:
        with pytest.raises(InvalidField) as caught:
            parse_command_spec(spec, "target.spec")
        assert caught.value.field == field

    @pytest.mark.parametrize("name", ["hive", "spark-sql", "presto.v2", "a", "x_1"])
    def test_type_names(self, name: str) -> None:
        assert check_type_name(name, "type") == name

    @pytest.mark.parametrize("name", ["Hive", "1hive", "", "hi ve", "*", "a" * 64, "hive;x"])
    def test_bad_type_names(self, name: str) -> None:
        with pytest.raises(InvalidField):
            check_type_name(name, "type")


class TestWorkerSettings:
    def test_options_win_over_the_environment(self) -> None:
        env = {COMMAND_TYPES_ENV: '{"hive": "beeline -f {script}", "presto": "presto -f {script}"}'}
        found = parse_command_types(["hive=hive2 -f {script}"], env)
        assert {n: t.text for n, t in found.items()} == {
            "hive": "hive2 -f {script}", "presto": "presto -f {script}"}

    @pytest.mark.parametrize("raw", ['["x"]', '{"hive": 1}', "{", '{"Hive": "b {script}"}',
                                     '{"hive": "beeline"}'])
    def test_a_bad_environment_is_refused(self, raw: str) -> None:
        with pytest.raises(ValueError):
            parse_command_types([], {COMMAND_TYPES_ENV: raw})

    def test_types(self) -> None:
        assert parse_types([]) is None
        assert parse_types(["shell,http", "hive", "shell"]) == ("shell", "http", "hive")
        with pytest.raises(ValueError, match="--types"):
            WorkerSettings(types=("shell", "hive rm"))

    def test_a_worker_takes_every_type_it_can_run_unless_told(self) -> None:
        types = builtin_job_types()
        types.add_commands(parse_command_types(["hive=beeline -f {script}"], {}))
        assert accepted_types(None, types) == ("hive", "http", "python", "shell", "sql")
        assert accepted_types(("hive", "shell"), types) == ("hive", "shell")
        with pytest.raises(ValueError, match="presto, which this worker cannot run"):
            accepted_types(("shell", "presto"), types)

    def test_a_command_type_may_not_replace_a_built_in_one(self) -> None:
        with pytest.raises(ValueError, match="shell"):
            builtin_job_types().add_commands(
                parse_command_types(["shell=bash {script}"], {}))


class TestWhoMayUseThem:
    def test_command_types_run_code_and_need_a_grant_naming_them(self) -> None:
        plugins = ["shell", "http", "python", "sql", "echo"]  # the server's installed types
        assert runs_code("hive", plugins) and runs_code("shell", plugins)
        assert not runs_code("http", plugins) and not runs_code("echo", plugins)
        plain = Principal("team", Role.OPERATOR, "cw_x")
        hive = Principal("team", Role.OPERATOR, "cw_x", job_types=frozenset({"hive"}))
        admin = Principal("system", Role.ADMIN, "cw_y")
        assert not may_use_type(plain, "hive", plugins) and may_use_type(plain, "echo", plugins)
        assert may_use_type(hive, "hive", plugins) and not may_use_type(hive, "presto", plugins)
        assert not may_use_type(hive, "shell", plugins)
        assert may_use_type(admin, "presto", plugins)
        star = Principal("team", Role.OPERATOR, "cw_x", job_types=frozenset({"*"}))
        assert not may_use_type(star, "hive", plugins)  # no wildcard

    def test_a_worker_without_declared_types_accepts_the_built_in_ones(self) -> None:
        old = WorkerInfo("w1", "old", "h", ("default",), 4, "0.1")
        new = WorkerInfo("w2", "new", "h", ("default",), 4, "0.2", ("hive",))
        assert old.accepts("shell") and old.accepts("sql") and not old.accepts("hive")
        assert new.accepts("hive") and not new.accepts("shell")
