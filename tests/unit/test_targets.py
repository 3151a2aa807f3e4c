"""Delivery targets and their validation (cronwheel.domain.targets)."""

from __future__ import annotations

from typing import Any

import pytest

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.targets import (
    GrpcTarget,
    HttpTarget,
    KafkaTarget,
    Target,
    check_host_port,
    parse_kafka_endpoint,
    target_from_dict,
)
from cronwheel.domain.worker_target import (
    AS_STORED,
    NO_JOB_TYPES,
    SpecParser,
    WorkerTarget,
)


def _http(**extra: Any) -> dict[str, Any]:
    return {"kind": "http", "url": "https://example.com/hook", **extra}


def _grpc(**extra: Any) -> dict[str, Any]:
    return {"kind": "grpc", "address": "localhost:50051", **extra}


def _kafka(**extra: Any) -> dict[str, Any]:
    return {"kind": "kafka", "bootstrap": ["127.0.0.1:9092"], "topic": "orders", **extra}


def _parse(data: Any, prefix: str = "target") -> Target:
    """Callback targets need no job types: none are given."""
    return target_from_dict(data, prefix, job_types=NO_JOB_TYPES)


def _field_of(data: Any, prefix: str = "target") -> str | None:
    with pytest.raises(InvalidField) as info:
        _parse(data, prefix)
    return info.value.field


class TestDispatch:
    @pytest.mark.parametrize("data", [None, "http://example.com", ["http"], 5])
    def test_target_must_be_an_object(self, data: Any) -> None:
        assert _field_of(data) == "target"

    @pytest.mark.parametrize("kind", ["smtp", "", None, "https"])
    def test_unknown_kind(self, kind: Any) -> None:
        with pytest.raises(InvalidField) as info:
            _parse({"kind": kind, "url": "https://example.com"})
        assert info.value.field == "target.kind"
        for known in ("grpc", "http", "kafka"):
            assert known in info.value.message

    def test_missing_kind(self) -> None:
        assert _field_of({"url": "https://example.com"}) == "target.kind"

    def test_kind_is_case_insensitive(self) -> None:
        assert isinstance(_parse(_http(kind="HTTP")), HttpTarget)

    def test_prefix_names_the_field_in_a_larger_document(self) -> None:
        assert _field_of(_http(url="ftp://x"), "jobs[3].target") == "jobs[3].target.url"
        assert _field_of({"kind": "mail"}, "jobs[3].target") == "jobs[3].target.kind"
        assert _field_of([], "jobs[3].target") == "jobs[3].target"


class TestHttp:
    def test_defaults(self) -> None:
        assert _parse(_http()) == HttpTarget(
            url="https://example.com/hook", method="POST", headers=(), timeout=10.0
        )

    def test_all_fields(self) -> None:
        target = _parse(
            _http(
                url="http://10.0.0.5:8080/cb?x=1",
                method="put",
                headers={"X-B": "2", "Authorization": "Bearer t"},
                timeout=2.5,
            )
        )
        assert target == HttpTarget(
            url="http://10.0.0.5:8080/cb?x=1",
            method="PUT",
            headers=(("Authorization", "Bearer t"), ("X-B", "2")),
            timeout=2.5,
        )

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "GET", "DELETE", "patch"])
    def test_accepted_methods(self, method: str) -> None:
        target = _parse(_http(method=method))
        assert isinstance(target, HttpTarget)
        assert target.method == method.upper()

    @pytest.mark.parametrize("timeout", [3_600, 3_600.0, 0.001, 1])
    def test_timeout_bounds_accepted(self, timeout: float) -> None:
        target = _parse(_http(timeout=timeout))
        assert isinstance(target, HttpTarget)
        assert target.timeout == float(timeout)

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.com/x",
            "example.com/hook",
            "//example.com/hook",
            "http://",
            "http:///path",
            "https://:443/x",
            "javascript:alert(1)",
            "",
            None,
            123,
        ],
    )
    def test_bad_url(self, url: Any) -> None:
        assert _field_of(_http(url=url)) == "target.url"

    def test_missing_url(self) -> None:
        assert _field_of({"kind": "http"}) == "target.url"

    @pytest.mark.parametrize("method", ["CONNECT", "FETCH", "", "TRACE", 5])
    def test_bad_method(self, method: Any) -> None:
        assert _field_of(_http(method=method)) == "target.method"

    @pytest.mark.parametrize(
        "headers",
        [{"X-A": 1}, {"X-A": None}, {"X-A": ["a"]}, {1: "a"}, ["X-A: 1"], "X-A: 1"],
    )
    def test_headers_must_map_strings_to_strings(self, headers: Any) -> None:
        assert _field_of(_http(headers=headers)) == "target.headers"

    @pytest.mark.parametrize(
        "timeout",
        [0, 0.0, -1, -0.5, 3_600.001, 86_400, float("inf"), float("nan"), "abc", [1], {}],
    )
    def test_bad_timeout(self, timeout: Any) -> None:
        assert _field_of(_http(timeout=timeout)) == "target.timeout"

    def test_to_dict(self) -> None:
        target = HttpTarget("https://example.com", "GET", (("A", "1"),), 3.0)
        assert target.to_dict() == {
            "kind": "http",
            "url": "https://example.com",
            "method": "GET",
            "headers": {"A": "1"},
            "timeout": 3.0,
        }


class TestGrpc:
    def test_defaults(self) -> None:
        assert _parse(_grpc()) == GrpcTarget("localhost:50051", 10.0, False)

    @pytest.mark.parametrize(
        ("address", "expected"),
        [
            ("grpc://10.0.0.1:443", "10.0.0.1:443"),
            ("[::1]:50051", "[::1]:50051"),
            ("svc.internal-name_1:1", "svc.internal-name_1:1"),
            ("host:65535", "host:65535"),
        ],
    )
    def test_address_forms(self, address: str, expected: str) -> None:
        target = _parse(_grpc(address=address, tls=True, timeout=1))
        assert target == GrpcTarget(expected, 1.0, True)

    @pytest.mark.parametrize(
        "address",
        [
            "localhost",
            "localhost:",
            ":50051",
            "host:port",
            "http://host:1",
            "host:0",
            "host:65536",
            "host:70000",
            "host:123456",
            "a b:1",
            "host:1/path",
            "::1:50051",
            "",
            None,
        ],
    )
    def test_bad_address(self, address: Any) -> None:
        assert _field_of(_grpc(address=address)) == "target.address"

    def test_missing_address(self) -> None:
        assert _field_of({"kind": "grpc"}) == "target.address"

    @pytest.mark.parametrize("timeout", [0, -1, 3_601, "soon"])
    def test_bad_timeout(self, timeout: Any) -> None:
        assert _field_of(_grpc(timeout=timeout)) == "target.timeout"

    def test_to_dict(self) -> None:
        assert GrpcTarget("h:1", 2.0, True).to_dict() == {
            "kind": "grpc",
            "address": "h:1",
            "timeout": 2.0,
            "tls": True,
        }


class TestKafka:
    def test_defaults(self) -> None:
        assert _parse(_kafka()) == KafkaTarget(("127.0.0.1:9092",), "orders", 10.0)

    def test_single_bootstrap_string(self) -> None:
        target = _parse(_kafka(bootstrap="broker:9092"))
        assert target == KafkaTarget(("broker:9092",), "orders", 10.0)

    def test_several_brokers_and_options(self) -> None:
        target = _parse(
            _kafka(bootstrap=["a:1", "b:2"], topic="orders.v1_eu-west", timeout=30)
        )
        assert target == KafkaTarget(("a:1", "b:2"), "orders.v1_eu-west", 30.0)

    def test_longest_topic_name(self) -> None:
        target = _parse(_kafka(topic="t" * 249))
        assert isinstance(target, KafkaTarget)
        assert target.topic == "t" * 249

    @pytest.mark.parametrize(
        "bootstrap",
        [
            [],
            "",
            None,
            ["broker"],
            ["a:1", "b"],
            ["a:0"],
            ["a:70000"],
            [""],
            {"a": 1},
            "a:1,b:2",
            9092,
        ],
    )
    def test_bad_bootstrap(self, bootstrap: Any) -> None:
        assert _field_of(_kafka(bootstrap=bootstrap)) == "target.bootstrap"

    def test_missing_bootstrap(self) -> None:
        assert _field_of({"kind": "kafka", "topic": "orders"}) == "target.bootstrap"

    @pytest.mark.parametrize(
        "topic", ["bad topic", "a/b", "t" * 250, "", None, 5, "tópico", "orders!"]
    )
    def test_bad_topic(self, topic: Any) -> None:
        assert _field_of(_kafka(topic=topic)) == "target.topic"

    def test_missing_topic(self) -> None:
        assert _field_of({"kind": "kafka", "bootstrap": ["a:1"]}) == "target.topic"

    @pytest.mark.parametrize("timeout", [0, -5, 10_000, "x"])
    def test_bad_timeout(self, timeout: Any) -> None:
        assert _field_of(_kafka(timeout=timeout)) == "target.timeout"

    def test_to_dict(self) -> None:
        assert KafkaTarget(("a:1", "b:2"), "t", 1.5).to_dict() == {
            "kind": "kafka",
            "bootstrap": ["a:1", "b:2"],
            "topic": "t",
            "timeout": 1.5,
        }


class TestKafkaEndpoint:
    @pytest.mark.parametrize(
        ("endpoint", "expected"),
        [
            ("127.0.0.1:9092/orders", KafkaTarget(("127.0.0.1:9092",), "orders", 10.0)),
            ("a:1,b:2/t", KafkaTarget(("a:1", "b:2"), "t", 10.0)),
            ("kafka://broker:9092/orders", KafkaTarget(("broker:9092",), "orders", 10.0)),
            ("kafka://a:1,b:2,c:3/x.y", KafkaTarget(("a:1", "b:2", "c:3"), "x.y", 10.0)),
        ],
    )
    def test_parses(self, endpoint: str, expected: KafkaTarget) -> None:
        assert parse_kafka_endpoint(endpoint, "endpoint") == expected

    @pytest.mark.parametrize("endpoint", ["127.0.0.1:9092", "kafka://a:1", "", "orders"])
    def test_missing_slash(self, endpoint: str) -> None:
        with pytest.raises(InvalidField) as info:
            parse_kafka_endpoint(endpoint, "endpoint")
        assert info.value.field == "endpoint"

    @pytest.mark.parametrize("endpoint", ["/orders", "a:1,/t", "a/t", "a:0/t", "kafka:///t"])
    def test_bad_brokers(self, endpoint: str) -> None:
        with pytest.raises(InvalidField) as info:
            parse_kafka_endpoint(endpoint, "endpoint")
        assert info.value.field is not None
        assert info.value.field.startswith("endpoint")
        assert "host:port" in info.value.message

    @pytest.mark.parametrize("endpoint", ["a:1/", "a:1/t/x", "a:1/bad topic"])
    def test_bad_topic(self, endpoint: str) -> None:
        with pytest.raises(InvalidField) as info:
            parse_kafka_endpoint(endpoint, "endpoint")
        assert info.value.field is not None
        assert info.value.field.startswith("endpoint")
        assert "topic" in info.value.message


class TestHostPort:
    @pytest.mark.parametrize("value", ["h:1", "h:65535", "[2001:db8::1]:80", "10.0.0.1:9092"])
    def test_valid(self, value: str) -> None:
        assert check_host_port(value, "f") == value

    @pytest.mark.parametrize("value", ["h", "h:0", "h:65536", "h:-1", "[zz]:1", "h:1 "])
    def test_invalid_names_the_given_field(self, value: str) -> None:
        with pytest.raises(InvalidField) as info:
            check_host_port(value, "worker.address")
        assert info.value.field == "worker.address"


@pytest.mark.parametrize(
    "target",
    [
        HttpTarget("https://example.com/x", "PATCH", (("A", "1"), ("B", "2")), 0.5),
        GrpcTarget("[::1]:443", 60.0, True),
        KafkaTarget(("a:1", "b:2"), "orders", 3_600.0),
    ],
)
def test_to_dict_round_trip(target: Target) -> None:
    assert _parse(target.to_dict()) == target


class _Upper:
    """A registry of one job type, `upper`, whose parser upper-cases `text`: enough to see that
    a worker target is checked by the types it is given and by nothing else."""

    def spec_parser(self, name: str) -> SpecParser | None:
        return self._parse if name == "upper" else None

    def names(self) -> list[str]:
        return ["upper"]

    @staticmethod
    def _parse(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
        if not isinstance(spec.get("text"), str):
            raise InvalidField("text must be a string", f"{prefix}.text")
        return {"text": spec["text"].upper()}


def _worker(**extra: Any) -> dict[str, Any]:
    return {"kind": "worker", "type": "upper", "spec": {"text": "hi"}, **extra}


class TestWorkerTargets:
    def test_the_spec_is_checked_and_normalised_by_the_given_type(self) -> None:
        target = target_from_dict(_worker(group="etl"), job_types=_Upper())
        assert isinstance(target, WorkerTarget)
        assert (target.job_type, target.spec, target.group) == ("upper", {"text": "HI"}, "etl")

    def test_a_spec_error_names_the_field_under_the_prefix(self) -> None:
        with pytest.raises(InvalidField) as info:
            target_from_dict(_worker(spec={}), "jobs[2].target", job_types=_Upper())
        assert info.value.field == "jobs[2].target.spec.text"

    def test_a_type_the_registry_lacks_is_refused_naming_the_known_ones(self) -> None:
        with pytest.raises(InvalidField) as info:
            target_from_dict(_worker(type="shell"), job_types=_Upper())
        assert info.value.field == "target.type"
        assert "['upper']" in info.value.message

    def test_where_no_job_types_are_given_a_worker_target_is_refused(self) -> None:
        assert _field_of(_worker()) == "target.type"

    def test_a_stored_target_is_read_back_as_it_was_written(self) -> None:
        # its type's plugin may be gone since: the job still loads, unchanged
        stored = WorkerTarget("gone-plugin", '{"a":[2],"b":"x"}', "etl", timeout=60.0)
        assert target_from_dict(stored.to_dict(), job_types=AS_STORED) == stored


class TestJobHeaders:
    """Headers a job may not set: framing, hop-by-hop, cloud metadata; control characters."""

    @pytest.mark.parametrize("name", [
        "Host", "content-length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE",
        "Upgrade", "Proxy-Authorization", "Metadata-Flavor", "X-aws-ec2-metadata-token",
        "Metadata",
    ])
    def test_forbidden_names_are_refused_naming_the_header(self, name: str) -> None:
        with pytest.raises(InvalidField) as caught:
            _parse({"kind": "http", "url": "http://h/", "headers": {name: "x"}})
        assert caught.value.field == f"target.headers.{name}"

    @pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "nul\x00", "bell\x07", "del\x7f"])
    def test_control_characters_in_a_value_are_refused(self, value: str) -> None:
        with pytest.raises(InvalidField) as caught:
            _parse({"kind": "http", "url": "http://h/", "headers": {"X-A": value}})
        assert caught.value.field == "target.headers.X-A"

    @pytest.mark.parametrize("name", ["X A", "X:A", "X\r\nB", "", "Ünicode"])
    def test_a_name_that_is_not_a_token_is_refused(self, name: str) -> None:
        with pytest.raises(InvalidField) as caught:
            _parse({"kind": "http", "url": "http://h/", "headers": {name: "x"}})
        assert caught.value.field == "target.headers"

    def test_ordinary_headers_pass(self) -> None:
        headers = {"Authorization": "Bearer t", "X-Trace": "a\tb", "Accept": "*/*"}
        target = _parse({"kind": "http", "url": "http://h/", "headers": headers})
        assert dict(target.headers) == headers  # type: ignore[union-attr]

    @pytest.mark.parametrize("url", ["http://[::1/", "http://[x]/", "http://h:99999/",
                                     "http://h:port/", "https://[fe80::1/a"])
    def test_a_broken_url_is_a_field_error(self, url: str) -> None:
        with pytest.raises(InvalidField) as caught:
            _parse({"kind": "http", "url": url})
        assert caught.value.field == "target.url"
