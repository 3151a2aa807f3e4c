"""TCP socket targets and their validation (cronwheel.domain.tcp_target)."""

from __future__ import annotations

from typing import Any

import pytest

from cronwheel.domain import targets
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.tcp_target import DEFAULT_TIMEOUT_S, TcpTarget, parse_tcp_target
from cronwheel.domain.worker_target import NO_JOB_TYPES


def _tcp(**extra: Any) -> dict[str, Any]:
    return {"kind": "tcp", "host": "10.0.0.5", "port": 9000, **extra}


def _field_of(data: dict[str, Any], prefix: str = "target") -> str | None:
    with pytest.raises(InvalidField) as info:
        parse_tcp_target(data, prefix)
    return info.value.field


def test_defaults() -> None:
    target = parse_tcp_target(_tcp())

    assert target == TcpTarget("10.0.0.5", 9000, 10.0, True)
    assert target.kind == "tcp"
    assert target.address == "10.0.0.5:9000"


def test_default_timeout_matches_the_other_targets() -> None:
    http = targets.target_from_dict({"kind": "http", "url": "http://127.0.0.1/"},
                                    job_types=NO_JOB_TYPES)
    assert parse_tcp_target(_tcp()).timeout == DEFAULT_TIMEOUT_S == http.timeout


def test_every_field_and_to_dict_round_trip() -> None:
    data = _tcp(host="receiver.internal", port=1, timeout=2.5, ack=False)

    target = parse_tcp_target(data)

    assert target.to_dict() == data
    assert parse_tcp_target(target.to_dict()) == target


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", "localhost"),
        ("a-b.example.com.", "a-b.example.com."),
        ("svc_name", "svc_name"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
        ("  example.com ", "example.com"),
    ],
)
def test_accepted_hosts(host: str, expected: str) -> None:
    target = parse_tcp_target(_tcp(host=host))

    assert target.host == expected


def test_ipv6_address_is_bracketed() -> None:
    assert parse_tcp_target(_tcp(host="::1", port=7)).address == "[::1]:7"


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "   ",
        5,
        ["localhost"],
        "host:80",
        "tcp://host",
        "bad host",
        "-leading.example",
        "trailing-.example",
        "a..b",
        "999.1.1.1",
        "1.2.3",
        "[127.0.0.1]",
        "[::1",
        "::g",
        "x" * 64,
        ".".join(["a" * 60] * 5),
        "héllo.example",
    ],
)
def test_rejected_hosts(host: Any) -> None:
    data = _tcp(host=host)
    if host is None:
        del data["host"]

    assert _field_of(data) == "target.host"


@pytest.mark.parametrize("port", [None, 0, -1, 65536, 1_000_000, True, False, "9000", 9000.0])
def test_rejected_ports(port: Any) -> None:
    data = _tcp(port=port)
    if port is None:
        del data["port"]

    assert _field_of(data) == "target.port"


@pytest.mark.parametrize("port", [1, 80, 65535])
def test_port_range_edges(port: int) -> None:
    assert parse_tcp_target(_tcp(port=port)).port == port


@pytest.mark.parametrize("timeout", [0, -1, "soon", None, 3_601, float("nan"), [1]])
def test_rejected_timeouts(timeout: Any) -> None:
    assert _field_of(_tcp(timeout=timeout)) == "target.timeout"


@pytest.mark.parametrize("ack", ["false", "true", 0, 1, None])
def test_rejected_ack(ack: Any) -> None:
    assert _field_of(_tcp(ack=ack)) == "target.ack"


def test_wrong_kind_is_refused() -> None:
    assert _field_of(_tcp(kind="http")) == "target.kind"


def test_kind_is_optional_and_case_blind() -> None:
    data = _tcp(kind="TCP")
    assert parse_tcp_target(data).kind == "tcp"
    del data["kind"]
    assert parse_tcp_target(data).host == "10.0.0.5"


def test_not_an_object() -> None:
    with pytest.raises(InvalidField) as info:
        parse_tcp_target("10.0.0.5:9000", "job.target")  # type: ignore[arg-type]

    assert info.value.field == "job.target"


def test_prefix_names_the_field() -> None:
    assert _field_of(_tcp(port=0), "jobs[3].target") == "jobs[3].target.port"
    assert _field_of(_tcp(timeout=0), "jobs[3].target") == "jobs[3].target.timeout"


def test_target_is_a_frozen_value() -> None:
    target = parse_tcp_target(_tcp())

    with pytest.raises(AttributeError):
        target.port = 1  # type: ignore[misc]
    assert target == parse_tcp_target(_tcp())
    assert hash(target) == hash(parse_tcp_target(_tcp()))
