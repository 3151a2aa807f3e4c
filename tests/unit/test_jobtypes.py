"""Job type spec parsers (cronwheel.jobtypes) and the registry that gathers them at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cronwheel import jobtypes
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.targets import target_from_dict
from cronwheel.domain.worker_target import WorkerTarget
from cronwheel.jobtypes import http, python, shell, sql
from cronwheel.jobtypes.registry import builtin_job_types, load_job_types
from tests.plugins import install_plugin

PREFIX = "target.spec"


def _field(parse: Any, spec: Any) -> str | None:
    with pytest.raises(InvalidField) as info:
        parse(spec, PREFIX)
    return info.value.field


BUILTIN = {"shell", "http", "python", "sql"}


class TestRegistry:
    def test_the_builtin_registry_holds_every_builtin_type(self) -> None:
        assert set(builtin_job_types().names()) == BUILTIN
        assert set(load_job_types().names()) >= BUILTIN

    def test_the_package_and_registry_import_no_heavy_client_library(self) -> None:
        code = ("import sys, cronwheel.jobtypes.registry; "
                "print([m for m in ('httpx', 'aiohttp', 'sqlalchemy') if m in sys.modules])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "[]"

    def test_the_domain_loads_no_job_type_by_itself(self) -> None:
        # the registry is filled by a process's entry point, never as a side effect of parsing
        code = ("import sys; from cronwheel.domain.targets import target_from_dict; "
                "from cronwheel.domain.worker_target import AS_STORED; "
                "target_from_dict({'kind': 'worker', 'type': 'shell', 'spec': {}}, "
                "job_types=AS_STORED); "
                "print(sorted(m for m in sys.modules if m.startswith('cronwheel.')"
                " and not m.startswith('cronwheel.domain')))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "[]"

    def test_a_worker_target_is_checked_by_its_type(self) -> None:
        types = builtin_job_types()
        target = target_from_dict({"kind": "worker", "type": "shell", "group": "etl",
                                   "spec": {"command": "true"}}, "target", job_types=types)
        assert isinstance(target, WorkerTarget)
        assert target.spec == {"command": "true", "env": {}}
        with pytest.raises(InvalidField) as info:
            target_from_dict({"kind": "worker", "type": "shell", "spec": {}}, "target",
                             job_types=types)
        assert info.value.field == "target.spec.command"

    def test_a_type_no_job_type_could_be_named_is_refused(self) -> None:
        for name in ("No Pe", "Hive", "", 5, "1st", "x" * 64):
            with pytest.raises(InvalidField) as info:
                target_from_dict({"kind": "worker", "type": name, "spec": {}}, "target",
                                 job_types=builtin_job_types())
            assert info.value.field == "target.type"
            assert "shell" in info.value.message and "command type" in info.value.message

    def test_an_unknown_well_named_type_is_a_command_type(self) -> None:
        """A worker may run it with a command line: its spec is the command types' spec."""
        with pytest.raises(InvalidField) as info:
            target_from_dict({"kind": "worker", "type": "nope", "spec": {}}, "target",
                             job_types=builtin_job_types())
        assert info.value.field == "target.spec.content"
        assert "'nope' is not one of ['http', 'python', 'shell', 'sql']" in info.value.message
        target = target_from_dict({"kind": "worker", "type": "spark-sql", "spec": {
            "content": "select 1", "content_type": "script"}}, "target",
            job_types=builtin_job_types())
        assert isinstance(target, WorkerTarget) and target.job_type == "spark-sql"
        assert target.spec == {"content": "select 1", "content_type": "script", "params": {}}

    def test_a_new_type_is_one_object_with_name_parse_and_launch(self) -> None:
        class Echo:
            name = "echo-test"

            def parse(self, spec: dict[str, Any], prefix: str) -> dict[str, Any]:
                return spec

            def launch(self, spec: dict[str, Any],
                       ctx: jobtypes.LaunchContext) -> jobtypes.Launch:
                return jobtypes.Launch(["echo", "hi"])

        types = builtin_job_types()
        types.register(Echo())
        assert types.get("echo-test").name == "echo-test"
        target = target_from_dict({"kind": "worker", "type": "echo-test", "spec": {"x": 1}},
                                  job_types=types)
        assert isinstance(target, WorkerTarget) and target.spec == {"x": 1}
        assert "echo-test" not in builtin_job_types().names()  # registries are not shared


class TestDiscovery:
    def test_an_installed_plugin_is_found_at_start_up(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        install_plugin(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        assert "echo" not in builtin_job_types().names()
        types = load_job_types()
        assert set(types.names()) == BUILTIN | {"echo"}
        target = target_from_dict({"kind": "worker", "type": "echo", "spec": {"text": "hi"}},
                                  job_types=types)
        assert isinstance(target, WorkerTarget) and target.spec == {"text": "hi"}

    def test_a_broken_plugin_is_logged_and_skipped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        install_plugin(tmp_path, "gone = no_such_module\nhalf = json\necho = echo_plugin\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        types = load_job_types()
        assert set(types.names()) == BUILTIN | {"echo"}
        assert "cannot load job type 'gone'" in caplog.text
        assert "job type 'half' (json) lacks name, parse or launch" in caplog.text


class TestShell:
    def test_a_command(self) -> None:
        assert shell.parse({"command": "echo hi"}, PREFIX) == {"command": "echo hi", "env": {}}

    def test_a_script_defaults_to_bash_and_keeps_cwd_and_env(self) -> None:
        spec = {"script": "echo $A", "cwd": "/tmp", "env": {"A": "1"}}
        assert shell.parse(spec, PREFIX) == {"script": "echo $A", "interpreter": "/bin/bash",
                                             "cwd": "/tmp", "env": {"A": "1"}}

    def test_an_interpreter_with_arguments(self) -> None:
        spec = shell.parse({"script": "print(1)", "interpreter": "/usr/bin/env python3"},
                           PREFIX)
        assert spec["interpreter"] == "/usr/bin/env python3"

    @pytest.mark.parametrize(("spec", "field"), [
        ({}, "command"),
        ({"command": "a", "script": "b"}, "script"),
        ({"command": ""}, "command"),
        ({"command": "   "}, "command"),
        ({"command": 5}, "command"),
        ({"script": ["echo"]}, "script"),
        ({"command": "a", "interpreter": "/bin/bash"}, "interpreter"),
        ({"script": "a", "interpreter": "'unclosed"}, "interpreter"),
        ({"command": "a", "cwd": ""}, "cwd"),
        ({"command": "a", "cwd": 3}, "cwd"),
        ({"command": "a", "env": {"A": 1}}, "env"),
        ({"command": "a", "env": ["A=1"]}, "env"),
        ({"command": "a", "env": {"1A": "x"}}, "env"),
        ({"command": "a", "env": {"A=B": "x"}}, "env"),
        ({"command": "a", "comand": "b"}, "comand"),
    ])
    def test_bad_specs_name_the_field(self, spec: dict[str, Any], field: str) -> None:
        assert _field(shell.parse, spec) == f"{PREFIX}.{field}"


class TestHttp:
    def test_defaults(self) -> None:
        assert http.parse({"url": "https://example.com/x"}, PREFIX) == {
            "url": "https://example.com/x", "method": "GET", "headers": {}}

    def test_everything(self) -> None:
        spec = {"url": "http://127.0.0.1:8080/x", "method": "post",
                "headers": {"X-A": "1"}, "body": {"a": [1]}, "expect": [201, 200, 201]}
        assert http.parse(spec, PREFIX) == {
            "url": "http://127.0.0.1:8080/x", "method": "POST", "headers": {"X-A": "1"},
            "body": {"a": [1]}, "expect": [200, 201]}

    def test_a_text_body(self) -> None:
        assert http.parse({"url": "http://h/", "body": "raw"}, PREFIX)["body"] == "raw"

    @pytest.mark.parametrize(("spec", "field"), [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "example.com/x"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": "http://[::1"}, "url"),
        ({"url": "http://h/", "method": "FETCH"}, "method"),
        ({"url": "http://h/", "method": 1}, "method"),
        ({"url": "http://h/", "headers": {"A": 1}}, "headers"),
        ({"url": "http://h/", "expect": []}, "expect"),
        ({"url": "http://h/", "expect": [200, 700]}, "expect"),
        ({"url": "http://h/", "expect": [True]}, "expect"),
        ({"url": "http://h/", "expect": 200}, "expect"),
        ({"url": "http://h/", "timeout": 3}, "timeout"),
    ])
    def test_bad_specs_name_the_field(self, spec: dict[str, Any], field: str) -> None:
        assert _field(http.parse, spec) == f"{PREFIX}.{field}"


class TestPython:
    def test_defaults(self) -> None:
        assert python.parse({"callable": "pkg.mod:run"}, PREFIX) == {
            "callable": "pkg.mod:run", "args": [], "kwargs": {}}

    def test_arguments_and_a_method_path(self) -> None:
        spec = {"callable": "mod:Klass.method", "args": [1, "a"], "kwargs": {"x": None}}
        assert python.parse(spec, PREFIX) == spec

    @pytest.mark.parametrize("path", [
        "pkg.mod", ":run", "pkg.mod:", "pkg..mod:run", "pkg.mod:run()", "pkg-x.mod:run",
        "1pkg:run", "pkg.class:run", "pkg:run:again", "pkg.mod:run-it", " pkg:run",
    ])
    def test_a_bad_callable_path(self, path: str) -> None:
        assert _field(python.parse, {"callable": path}) == f"{PREFIX}.callable"

    @pytest.mark.parametrize(("spec", "field"), [
        ({}, "callable"),
        ({"callable": "m:f", "args": {"a": 1}}, "args"),
        ({"callable": "m:f", "kwargs": [1]}, "kwargs"),
        ({"callable": "m:f", "kwarg": {}}, "kwarg"),
    ])
    def test_bad_specs_name_the_field(self, spec: dict[str, Any], field: str) -> None:
        assert _field(python.parse, spec) == f"{PREFIX}.{field}"


class TestSql:
    def test_defaults(self) -> None:
        assert sql.parse({"database": "main", "statement": "select 1"}, PREFIX) == {
            "database": "main", "statement": "select 1", "params": {}}

    @pytest.mark.parametrize(("spec", "field"), [
        ({"statement": "select 1"}, "database"),
        ({"database": "a b", "statement": "select 1"}, "database"),
        ({"database": "x" * 65, "statement": "select 1"}, "database"),
        ({"database": "main"}, "statement"),
        ({"database": "main", "statement": ""}, "statement"),
        ({"database": "main", "statement": "select 1", "params": [1]}, "params"),
        ({"database": "main", "statement": "select 1", "url": "sqlite://"}, "url"),
    ])
    def test_bad_specs_name_the_field(self, spec: dict[str, Any], field: str) -> None:
        assert _field(sql.parse, spec) == f"{PREFIX}.{field}"

    @pytest.mark.parametrize(("statement", "reads"), [
        ("select 1", True), ("  WITH x AS (select 1) select * from x", True),
        ("-- note\nselect 1", True), ("/* a */ values (1)", True),
        ("update t set a = 1", False), ("insert into t values (1) returning a", False),
        ("", False),
    ])
    def test_which_statements_stream(self, statement: str, reads: bool) -> None:
        assert sql.reads(statement) is reads
