"""The target policy applied when connecting: on the address a name resolves to, not the name.

Checking a URL's host before sending would leave a gap: a name can resolve to a public
address when checked and to 169.254.169.254 a moment later (DNS rebinding). So the check runs
where the socket is made: for aiohttp, a resolver that drops refused addresses and a socket
factory that refuses to create a socket for one (which also covers literal addresses and
redirects, which aiohttp never resolves); for gRPC, Kafka and TCP, `checked_addresses`
resolves the host once and the transport connects to the address that passed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult

from cronwheel.contracts import DeliveryResult
from cronwheel.domain.netpolicy import IPAddress, NetPolicy, literal_address
from cronwheel.domain.runs import AttemptOutcome

# host, port -> the addresses the host resolves to (injectable: tests map names to addresses)
Lookup = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(OSError):
    """The target policy refused every address a connection could use."""


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%")[0])


async def system_lookup(host: str, port: int) -> list[str]:
    """The operating system's resolver, in its preference order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class StaticLookup:
    """Names mapped to addresses, for tests and for pinning names in deployments."""

    def __init__(self, names: Mapping[str, list[str]]) -> None:
        self._names = {name.lower(): list(addresses) for name, addresses in names.items()}

    async def __call__(self, host: str, port: int) -> list[str]:
        try:
            return self._names[host.lower().rstrip(".")]
        except KeyError:
            raise OSError(socket.EAI_NONAME, f"unknown host {host!r}") from None


async def checked_addresses(
    host: str, port: int, policy: NetPolicy, lookup: Lookup = system_lookup
) -> list[str]:
    """The addresses of `host` the policy allows, to connect to; TargetRefused if none."""
    literal = literal_address(host)
    found = [str(literal)] if literal is not None else await lookup(host, port)
    allowed, reasons = [], []
    for text in found:
        reason = policy.refusal(_address(text))
        if reason is None:
            allowed.append(text)
        else:
            reasons.append(reason)
    if not allowed:
        shown = host if literal is not None else f"{host} resolves to {', '.join(found)}"
        raise TargetRefused(f"target refused: {shown}: {'; '.join(reasons) or 'no address'}")
    return allowed


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the policy allows."""

    def __init__(self, policy: NetPolicy, lookup: Lookup = system_lookup) -> None:
        self._policy = policy
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await checked_addresses(host, port, self._policy, self._lookup)
        wanted = [a for a in addresses if family == socket.AF_UNSPEC or _family(a) == family]
        return [_result(host, text, port) for text in wanted or addresses]

    async def close(self) -> None:
        return None


def _family(text: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in text else socket.AF_INET


def _result(host: str, text: str, port: int) -> ResolveResult:
    return ResolveResult(
        hostname=host, host=text, port=port, family=_family(text), proto=0,
        flags=socket.AI_NUMERICHOST,
    )


def socket_factory(policy: NetPolicy) -> SocketFactoryType:
    """The last check, as the socket is made: literal hosts and redirects end up here too."""

    def make(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        reason = policy.refusal(_address(str(sockaddr[0])))
        if reason is not None:
            raise TargetRefused(f"target refused: {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    return make


def guarded_connector(
    policy: NetPolicy, lookup: Lookup = system_lookup, **options: Any
) -> aiohttp.TCPConnector:
    """A connector that can only reach addresses the policy allows."""
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, lookup), socket_factory=socket_factory(policy), **options
    )


def refusal_of(exc: BaseException) -> TargetRefused | None:
    """The policy's refusal behind a client error, so it is reported as such."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TargetRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`, as the target parsers accepted it."""
    host, _, port = address.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def checked_server(
    address: str, policy: NetPolicy, lookup: Lookup = system_lookup
) -> tuple[str, ...]:
    """`host:port` -> each allowed `ip:port` it resolves to, to connect to instead."""
    host, port = split_host_port(address)
    found = await checked_addresses(host, port, policy, lookup)
    return tuple(join_host_port(ip, port) for ip in found)


async def open_checked(
    addresses: list[str], port: int, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first address that answers, as a connect to the name would have."""
    error: OSError = OSError(f"no address to connect to on port {port}")
    for address in addresses:
        try:
            return await asyncio.open_connection(address, port, limit=limit)
        except OSError as exc:
            error = exc
    raise error


def refused(exc: TargetRefused) -> DeliveryResult:
    """A refused target fails the attempt for good: sending again cannot change the policy."""
    return DeliveryResult(AttemptOutcome.FAILURE, False, error=str(exc))
