"""Which network addresses a job may make the server connect to (the SSRF guard's rules).

Pure: it judges addresses and literal hosts; `delivery/guard.py` applies it to the address a
name resolves to at the moment of connecting. Three layers, in order:

1. the always-denied set (link-local and cloud metadata, `0.0.0.0/8`, multicast, broadcast):
   no setting can allow it;
2. the operator's deny and allow CIDR lists: where both match, the longer prefix wins and a
   tie denies, so "deny 10.0.0.0/8, allow 10.1.2.0/24" does what it says;
3. any other address that is not globally reachable (loopback, private, CGNAT, unique local,
   documentation ranges) is refused unless an allow entry covers it; public addresses pass.

An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, 6to4, NAT64's
well-known prefix) is judged by both, and the IPv4 text forms resolvers accept (`127.1`,
`0x7f.1`, `2130706433`, `0177.0.0.1`) are read as the addresses they are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


ALWAYS_DENIED: tuple[IPNetwork, ...] = _nets(
    "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
    "169.254.0.0/16",  # link-local, with 169.254.169.254 (AWS, GCP, Azure, OCI metadata)
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, with 255.255.255.255 broadcast
    "::/128",  # unspecified
    "fe80::/10",  # link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "ff00::/8",  # multicast
)
LOOPBACK: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
DEFAULT_SCHEMES: frozenset[str] = frozenset({"http", "https"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class PolicyError(ValueError):
    """A setting of the policy (a CIDR, a scheme) is malformed."""


def parse_networks(texts: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs or bare addresses; host bits set are refused, as they usually mean a typo."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip()))
        except ValueError as exc:
            raise PolicyError(f"not a CIDR network: {text!r} ({exc})") from None
    return tuple(networks)


def forms(address: IPAddress) -> tuple[IPAddress, ...]:
    """The address and any IPv4 address it carries, each of which must pass."""
    if isinstance(address, ipaddress.IPv4Address):
        return (address,)
    if address.scope_id:  # fe80::1%eth0: judge the address, not the zone
        address = ipaddress.IPv6Address(int(address))
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
        return (address.ipv4_mapped,)
    embedded = address.sixtofour
    if embedded is None and address in _NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return (address,) if embedded is None else (address, embedded)


def _ipv4_part(text: str) -> int | None:
    """One part of an inet_aton-style address: decimal, 0-prefixed octal or 0x hex."""
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16) if text[2:] else 0
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def _loose_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """Read 1-4 dotted parts the way inet_aton does: the last part fills the low bits."""
    parts = text.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    values = [_ipv4_part(part) for part in parts]
    if any(v is None for v in values):
        return None
    numbers = [v for v in values if v is not None]
    *high, last = numbers
    if any(v > 0xFF for v in high) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    return ipaddress.IPv4Address(_pack(high, last))


def _pack(high: list[int], last: int) -> int:
    value = 0
    for index, part in enumerate(high):
        value |= part << (8 * (3 - index))
    return value | last


def literal_address(host: str) -> IPAddress | None:
    """The address a literal host names (brackets optional), or None for a DNS name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    return _loose_ipv4(text) if ":" not in text else None


_UNKNOWN = "?"  # not a reason host_refusal gives: a host not judged yet
_KEPT_HOSTS = 1024


def _longest(address: IPAddress, networks: tuple[IPNetwork, ...]) -> int:
    """The prefix length of the most specific network holding the address, -1 if none."""
    lengths = [n.prefixlen for n in networks if n.version == address.version and address in n]
    return max(lengths, default=-1)


@dataclass(frozen=True, slots=True)
class NetPolicy:
    """One policy: the server's from settings; an app's may later replace it per namespace."""

    allow: tuple[IPNetwork, ...] = _nets(*LOOPBACK)
    deny: tuple[IPNetwork, ...] = ()
    schemes: frozenset[str] = DEFAULT_SCHEMES
    follow_redirects: bool = False
    # host_refusal's answers: a batch names the same few hosts a thousand times (bounded)
    _hosts: dict[str, str | None] = field(default_factory=dict, init=False, repr=False,
                                          compare=False, hash=False)

    @classmethod
    def from_settings(
        cls,
        allow: Iterable[str] = LOOPBACK,
        deny: Iterable[str] = (),
        schemes: Iterable[str] = DEFAULT_SCHEMES,
        follow_redirects: bool = False,
    ) -> NetPolicy:
        wanted = frozenset(s.strip().lower() for s in schemes if s.strip())
        if not wanted or not wanted <= DEFAULT_SCHEMES:
            raise PolicyError(f"schemes must be a non-empty subset of {sorted(DEFAULT_SCHEMES)}")
        return cls(parse_networks(allow), parse_networks(deny), wanted, follow_redirects)

    def refusal(self, address: IPAddress) -> str | None:
        """Why a connection to `address` is refused, or None when it may go ahead."""
        for form in forms(address):
            reason = self._refusal(form)
            if reason is not None:
                return reason if form.version == address.version else f"{address}: {reason}"
        return None

    def _refusal(self, address: IPAddress) -> str | None:
        if _longest(address, ALWAYS_DENIED) >= 0:
            return f"{address} is link-local, metadata, multicast or reserved: always refused"
        allowed, denied = _longest(address, self.allow), _longest(address, self.deny)
        if denied >= 0 and denied >= allowed:
            return f"{address} is in the server's deny list"
        if allowed < 0 and not address.is_global:
            return (
                f"{address} is a loopback, private or otherwise internal address"
                " the server's target policy does not allow"
            )
        return None

    def host_refusal(self, host: str) -> str | None:
        """For submit time: a literal host's refusal; a DNS name is judged when connecting."""
        known = self._hosts.get(host, _UNKNOWN)
        if known is not _UNKNOWN:
            return known
        address = literal_address(host)
        reason = None if address is None else self.refusal(address)
        if len(self._hosts) >= _KEPT_HOSTS:
            self._hosts.clear()
        self._hosts[host] = reason
        return reason


def always_refusal(host: str) -> str | None:
    """Only the always-denied set, for targets another machine (a worker) connects to."""
    return UNRESTRICTED.host_refusal(host)


UNRESTRICTED = NetPolicy(allow=_nets("0.0.0.0/0", "::/0"))


def _env_list(environ: Mapping[str, str], name: str, default: Iterable[str]) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return list(default)
    return [part.strip().strip('"[]') for part in raw.split(",") if part.strip().strip('"[]')]


def policy_from_env(environ: Mapping[str, str]) -> NetPolicy:
    """A worker's policy, from the same CRONWHEEL_TARGET_* names the server reads."""
    return NetPolicy.from_settings(
        _env_list(environ, "CRONWHEEL_TARGET_ALLOW", LOOPBACK),
        _env_list(environ, "CRONWHEEL_TARGET_DENY", ()),
        _env_list(environ, "CRONWHEEL_TARGET_SCHEMES", DEFAULT_SCHEMES),
    )
