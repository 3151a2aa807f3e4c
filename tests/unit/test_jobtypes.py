"""Job type spec parsers (cronwheel.jobtypes): pure checks the server runs at submit time."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from cronwheel import jobtypes
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.targets import target_from_dict
from cronwheel.domain.worker_target import WorkerTarget, job_type_names
from cronwheel.jobtypes import http, python, shell, sql

PREFIX = "target.spec"


def _field(parse: Any, spec: Any) -> str | None:
    with pytest.raises(InvalidField) as info:
        parse(spec, PREFIX)
    return info.value.field


class TestRegistry:
    def test_importing_the_package_registers_every_builtin_parser(self) -> None:
        assert {"shell", "http", "python", "sql"} <= set(job_type_names())
        assert {"shell", "http", "python", "sql"} <= set(jobtypes.names())

    def test_the_package_imports_no_heavy_client_library(self) -> None:
        import subprocess

        code = ("import sys, cronwheel.jobtypes; "
                "print([m for m in ('httpx', 'aiohttp', 'sqlalchemy') if m in sys.modules])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "[]"

    def test_a_worker_target_is_checked_by_its_type(self) -> None:
        target = target_from_dict({"kind": "worker", "type": "shell", "group": "etl",
                                   "spec": {"command": "true"}}, "target")
        assert isinstance(target, WorkerTarget)
        assert target.spec == {"command": "true", "env": {}}
        with pytest.raises(InvalidField) as info:
            target_from_dict({"kind": "worker", "type": "shell", "spec": {}}, "target")
        assert info.value.field == "target.spec.command"

    def test_an_unknown_type_is_refused(self) -> None:
        with pytest.raises(InvalidField) as info:
            target_from_dict({"kind": "worker", "type": "nope", "spec": {}}, "target")
        assert info.value.field == "target.type"

    def test_a_new_type_is_one_object_with_name_parse_and_launch(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from cronwheel.domain import worker_target

        # registries of their own, so the test type does not outlive the test
        monkeypatch.setattr(jobtypes, "_TYPES", dict(jobtypes._TYPES))
        monkeypatch.setattr(worker_target, "_JOB_TYPES", dict(worker_target._JOB_TYPES))

        class Echo:
            name = "echo-test"

            def parse(self, spec: dict[str, Any], prefix: str) -> dict[str, Any]:
                return spec

            def launch(self, spec: dict[str, Any],
                       ctx: jobtypes.LaunchContext) -> jobtypes.Launch:
                return jobtypes.Launch(["echo", "hi"])

        jobtypes.register(Echo())
        assert jobtypes.get("echo-test").name == "echo-test"
        assert "echo-test" in job_type_names()


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
