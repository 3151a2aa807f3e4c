"""TCP socket targets: one JSON line to `host:port`, optionally answered by an ack line.

This is the `SOCKET` callback of the delay-job API (`{"host": ip, "port": n}`). It lives
apart from `targets.py` until the target registry takes it in; the checks both share are in
`target_checks.py`, so `targets.py` imports this module and not the other way round.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.target_checks import DEFAULT_TIMEOUT_S as DEFAULT_TIMEOUT_S
from cronwheel.domain.target_checks import check_timeout

# RFC 1123 labels; "_" is allowed as in targets.check_host_port (container and SRV names).
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_NUMERIC = re.compile(r"^[0-9.]+$")


@dataclass(frozen=True, slots=True)
class TcpTarget:
    """A receiver reading one JSON line per connection at `host:port` (see delivery/tcp.py)."""

    host: str
    port: int
    timeout: float = DEFAULT_TIMEOUT_S
    ack: bool = True  # wait for the receiver's acknowledgement line
    kind: ClassVar[str] = "tcp"

    @property
    def slot(self) -> str:
        return f"tcp:{self.address}"

    @property
    def address(self) -> str:
        """host:port for messages, with an IPv6 literal in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "timeout": self.timeout,
            "ack": self.ack,
        }


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_hostname(text: str) -> bool:
    """Dotted RFC 1123 labels; all-numeric text must be an IPv4 address, not a name."""
    name = text.removesuffix(".")
    if not name or len(name) > 253 or _NUMERIC.match(name):
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def check_host(value: Any, fieldname: str) -> str:
    """A hostname, an IPv4 literal or an IPv6 literal (brackets optional, dropped)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("host is required and must be a string", fieldname)
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host or not _is_ip(host):
            raise InvalidField(f"host {value!r} is not an IPv6 address", fieldname)
    if _is_ip(host) or _is_hostname(host):
        return host
    raise InvalidField(
        f"host must be a hostname, an IPv4 or an IPv6 address, got {value!r}", fieldname
    )


def check_port(value: Any, fieldname: str) -> int:
    """An integer 1-65535; bools and numeric strings are refused, not coerced."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField("port is required and must be an integer", fieldname)
    if not 0 < value < 65536:
        raise InvalidField(f"port must be between 1 and 65535, got {value}", fieldname)
    return value


def parse_tcp_target(data: dict[str, Any], prefix: str = "target") -> TcpTarget:
    """Validate `{"kind": "tcp", "host", "port", "timeout"?, "ack"?}`; errors name the field."""
    if not isinstance(data, dict):
        raise InvalidField("target must be an object", prefix)
    if str(data.get("kind", TcpTarget.kind)).lower() != TcpTarget.kind:
        raise InvalidField("kind must be 'tcp'", f"{prefix}.kind")
    host = check_host(data.get("host"), f"{prefix}.host")
    port = check_port(data.get("port"), f"{prefix}.port")
    timeout = check_timeout(data.get("timeout", DEFAULT_TIMEOUT_S), prefix)
    ack = data.get("ack", True)
    if not isinstance(ack, bool):
        raise InvalidField("ack must be true or false", f"{prefix}.ack")
    return TcpTarget(host, port, timeout, ack)
