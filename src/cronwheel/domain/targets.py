"""Where a run is delivered. A target is a value; `delivery/` holds the code that sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.kubernetes import KubernetesTarget, parse_kubernetes_target
from cronwheel.domain.log_target import LogTarget, parse_log_target
from cronwheel.domain.target_checks import DEFAULT_TIMEOUT_S as DEFAULT_TIMEOUT_S
from cronwheel.domain.target_checks import MAX_TIMEOUT_S as MAX_TIMEOUT_S
from cronwheel.domain.target_checks import check_timeout
from cronwheel.domain.tcp_target import TcpTarget, parse_tcp_target
from cronwheel.domain.worker_target import (
    NO_JOB_TYPES,
    SpecParsers,
    WorkerTarget,
    parse_worker_target,
)

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Set by the transport or meaningful only hop by hop: a job setting them could smuggle a
# second request or confuse a proxy. The metadata ones unlock cloud credentials services.
FORBIDDEN_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
    "trailer", "upgrade", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "metadata-flavor", "metadata", "x-aws-ec2-metadata-token",
    "x-aws-ec2-metadata-token-ttl-seconds", "x-google-metadata-request",
})

# How an HTTP answer is read: any 2xx is a success, or (the delay-job contract) a 2xx whose
# JSON body's `code` is not "ok" is a failure to retry.
SUCCESS_2XX = "2xx"
SUCCESS_CODE_OK = "code_ok"
# Which service a gRPC receiver implements: cronwheel's own, or the delay-job callback.
SERVICE_CRONWHEEL = "cronwheel"
SERVICE_DELAYJOB = "delayjob"
SERVER_BROKERS = "server"  # a kafka target's `bootstrap` naming the server's configured brokers


def check_url(url: str, fieldname: str, what: str = "url") -> str:
    """An http(s) URL with a host and a valid port; a broken one (`http://[x/`) is a 422."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        host = None
    if not host or parts.scheme not in ("http", "https"):
        raise InvalidField(f"{what} must be an http(s) URL with a host, got {url!r}", fieldname)
    return url


def check_headers(headers: Any, fieldname: str) -> dict[str, str]:
    """Names and string values a request may carry; refused at submit, not at delivery."""
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidField("headers must map names to strings", fieldname)
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise InvalidField(f"header name {name!r} is not a valid HTTP token", fieldname)
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvalidField(f"header {name!r} may not be set by a job", f"{fieldname}.{name}")
        if _CONTROL.search(value):
            raise InvalidField(
                f"header {name!r} has a control character in its value", f"{fieldname}.{name}"
            )
    return headers


def check_host_port(value: str, fieldname: str) -> str:
    match = _HOST_PORT.match(value)
    if not match or not 0 < int(match["port"]) < 65536:
        raise InvalidField(f"expected host:port, got {value!r}", fieldname)
    return value


@dataclass(frozen=True, slots=True)
class HttpTarget:
    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT_S
    success: str = SUCCESS_2XX
    kind: ClassVar[str] = "http"

    @property
    def slot(self) -> str:
        """The receiver, for per-receiver concurrency limits: scheme, host and port."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "url": self.url,
            "method": self.method,
            "headers": dict(self.headers),
            "timeout": self.timeout,
        }
        if self.success != SUCCESS_2XX:  # absent by default: native targets look as before
            data["success"] = self.success
        return data


@dataclass(frozen=True, slots=True)
class GrpcTarget:
    """A receiver at `address` (host:port) implementing cronwheel.v1.Callback/Deliver, or
    with `service` "delayjob" the delay-job service's delay.job.JobCallback/trigger."""

    address: str
    timeout: float = DEFAULT_TIMEOUT_S
    tls: bool = False
    service: str = SERVICE_CRONWHEEL
    kind: ClassVar[str] = "grpc"

    @property
    def slot(self) -> str:
        return f"grpc:{self.address}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "address": self.address,
            "timeout": self.timeout,
            "tls": self.tls,
        }
        if self.service != SERVICE_CRONWHEEL:
            data["service"] = self.service
        return data


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """`topic` on the cluster at `bootstrap`. No brokers (`"bootstrap": "server"`) means the
    server's own (CRONWHEEL_KAFKA_BOOTSTRAP), as the delay-job service's bare topics do."""

    bootstrap: tuple[str, ...]
    topic: str
    timeout: float = DEFAULT_TIMEOUT_S
    kind: ClassVar[str] = "kafka"

    @property
    def slot(self) -> str:
        return f"kafka:{','.join(self.bootstrap) or 'server'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bootstrap": list(self.bootstrap) or SERVER_BROKERS,
            "topic": self.topic,
            "timeout": self.timeout,
        }


Target = (HttpTarget | GrpcTarget | KafkaTarget | TcpTarget | WorkerTarget | LogTarget
          | KubernetesTarget)
_METHODS = {"POST", "PUT", "PATCH", "GET", "DELETE"}


@dataclass(frozen=True, slots=True)
class _Parse:
    data: dict[str, Any]
    prefix: str
    job_types: SpecParsers

    def text(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidField(f"{name} is required and must be a string", f"{self.prefix}.{name}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.data.get(name, allowed[0])
        if not isinstance(value, str) or value.lower() not in allowed:
            raise InvalidField(f"{name} must be one of {', '.join(allowed)}",
                               f"{self.prefix}.{name}")
        return value.lower()


def _http(p: _Parse) -> HttpTarget:
    url = check_url(p.text("url"), f"{p.prefix}.url")
    method = str(p.data.get("method", "POST")).upper()
    if method not in _METHODS:
        raise InvalidField(f"method must be one of {sorted(_METHODS)}", f"{p.prefix}.method")
    headers = check_headers(p.data.get("headers") or {}, f"{p.prefix}.headers")
    timeout = check_timeout(p.data.get("timeout", DEFAULT_TIMEOUT_S), p.prefix)
    success = p.choice("success", (SUCCESS_2XX, SUCCESS_CODE_OK))
    return HttpTarget(url, method, tuple(sorted(headers.items())), timeout, success)


def _grpc(p: _Parse) -> GrpcTarget:
    address = p.text("address").removeprefix("grpc://")
    check_host_port(address, f"{p.prefix}.address")
    timeout = check_timeout(p.data.get("timeout", DEFAULT_TIMEOUT_S), p.prefix)
    service = p.choice("service", (SERVICE_CRONWHEEL, SERVICE_DELAYJOB))
    return GrpcTarget(address, timeout, bool(p.data.get("tls", False)), service)


def _kafka(p: _Parse) -> KafkaTarget:
    raw = p.data.get("bootstrap")
    servers = [] if raw == SERVER_BROKERS else [raw] if isinstance(raw, str) else raw
    if not isinstance(servers, list) or (not servers and raw != SERVER_BROKERS):
        raise InvalidField(
            f"bootstrap must list host:port brokers, or be {SERVER_BROKERS!r}",
            f"{p.prefix}.bootstrap",
        )
    for server in servers:
        check_host_port(str(server), f"{p.prefix}.bootstrap")
    topic = p.text("topic")
    if not _TOPIC.match(topic):
        raise InvalidField(
            "topic must be 1-249 characters of letters, digits, '.', '_' or '-'",
            f"{p.prefix}.topic",
        )
    timeout = check_timeout(p.data.get("timeout", DEFAULT_TIMEOUT_S), p.prefix)
    return KafkaTarget(tuple(str(s) for s in servers), topic, timeout)


_KINDS: dict[str, Callable[[_Parse], Target]] = {
    "http": _http,
    "grpc": _grpc,
    "kafka": _kafka,
    "tcp": lambda p: parse_tcp_target(p.data, p.prefix),
    "worker": lambda p: parse_worker_target(p.data, p.prefix, p.job_types),
    "log": lambda p: parse_log_target(p.data, p.prefix),
    "kubernetes": lambda p: parse_kubernetes_target(p.data, p.prefix),
}


def target_from_dict(data: Any, prefix: str = "target", *, job_types: SpecParsers) -> Target:
    """Check a target object; errors name the field under `prefix`. Worker targets are
    checked against `job_types` (NO_JOB_TYPES where none may come, AS_STORED on reading
    back what was checked on the way in)."""
    if not isinstance(data, dict):
        raise InvalidField("target must be an object with a 'kind'", prefix)
    parse = _KINDS.get(str(data.get("kind", "")).lower())
    if parse is None:
        raise InvalidField(f"target kind must be one of {sorted(_KINDS)}", f"{prefix}.kind")
    return parse(_Parse(data, prefix, job_types))


def parse_kafka_endpoint(endpoint: str, fieldname: str) -> KafkaTarget:
    """`broker:port[,broker:port...]/topic`, the form the delay-job dialect documents."""
    servers, sep, topic = endpoint.removeprefix("kafka://").partition("/")
    if not sep:
        raise InvalidField(f"expected broker:port/topic, got {endpoint!r}", fieldname)
    target = {"kind": "kafka", "bootstrap": servers.split(","), "topic": topic}
    return _kafka(_Parse(target, fieldname, NO_JOB_TYPES))
