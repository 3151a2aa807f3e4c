"""Who may use a dialect that carries no credential of its own: a network policy per dialect.

delay-job (HTTP and gRPC), dispatchserver and the Kubernetes job service define no credential,
and their clients cannot be changed. So a rule maps a client network (CIDR) to an app and to
the namespace the dialect's jobs go to within that app's claims (for dispatchserver, a
namespace prefix). The most specific network holding the client's address wins (longest
prefix); an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a dual-stack socket reports) is
judged as the IPv4 address it carries. A rule may also require a cronwheel token of its app
(`Authorization: Bearer cw_...`) from clients that can send one.

While a dialect has no stored rule, its built-in rules apply: loopback clients are the
`system` app, writing the namespaces the dialect wrote before the policy existed.

Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from cronwheel.domain.access import (
    SYSTEM_APP,
    App,
    Principal,
    Role,
    check_claim,
    claim_matches,
    claims_overlap,
    foreign_claims,
    specificity,
)
from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import Micros

DELAYJOB = "delayjob"
DELAYJOB_GRPC = "delayjob-grpc"
DISPATCHSERVER = "dispatchserver"
KUBERNETES = "kubernetes"
DIALECTS = (DELAYJOB, DELAYJOB_GRPC, DISPATCHSERVER, KUBERNETES)
PREFIX_DIALECTS = frozenset({DISPATCHSERVER})  # their rule names a namespace prefix
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
KUBERNETES_NAMESPACE = "k8s-job"  # where the Kubernetes dialect's built-in rule writes
MAX_NAMESPACE = 255

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_dialect(dialect: str, field_name: str = "dialect") -> str:
    if dialect not in DIALECTS:
        raise InvalidField(f"a dialect is one of {', '.join(DIALECTS)}; got {dialect!r}",
                           field_name)
    return dialect


def parse_network(text: str, field_name: str = "network") -> Network:
    """A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or one address; host bits must be zero.
    An IPv4-mapped IPv6 network is kept as the IPv4 network it maps."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidField(f"not a network in CIDR form (such as 10.0.0.0/8): {exc}",
                           field_name) from None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def client_address(host: str | None) -> Address | None:
    """The client's address as a rule judges it: an IPv4-mapped IPv6 address as IPv4 (and
    without a zone); None for anything that is not an IP address (a Unix socket)."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class AdmissionRule:
    """Clients of `network` using `dialect` are `app`, writing `namespace` (a prefix for
    dispatchserver); with `token` they must also send a live token of `app`."""

    dialect: str
    network: str  # canonical CIDR text
    app: str
    namespace: str
    token: bool = False
    note: str = ""
    created_at: Micros = 0
    builtin: bool = False  # one of the defaults: not stored, not checked against claims

    @property
    def parsed(self) -> Network:
        return _network(self.network)


@lru_cache(maxsize=4096)
def _network(text: str) -> Network:
    return ipaddress.ip_network(text)


def new_rule(dialect: str, network: str, app: str, namespace: str, token: bool = False,
             note: str = "", created_at: Micros = 0) -> AdmissionRule:
    """A rule with every field checked (network in canonical form)."""
    check_dialect(dialect)
    canonical = str(parse_network(network))
    if not namespace or len(namespace) > MAX_NAMESPACE or any(c.isspace() or c == "*"
                                                                for c in namespace):
        raise InvalidField(f"a namespace is 1-{MAX_NAMESPACE} characters without spaces or "
                           "'*'", "namespace")
    if len(note) > 1_000:
        raise InvalidField("a note is at most 1000 characters", "note")
    return AdmissionRule(dialect, canonical, app, namespace, token, note, created_at)


def default_rules(dialect: str, namespace: str) -> tuple[AdmissionRule, ...]:
    """The built-in policy of a dialect without stored rules: loopback is `system`."""
    return tuple(AdmissionRule(dialect, net, SYSTEM_APP, namespace, builtin=True)
                 for net in LOOPBACK_NETWORKS)


def choose(rules: Iterable[AdmissionRule], address: Address | None) -> AdmissionRule | None:
    """The rule of the most specific network holding `address`; None when none does."""
    if address is None:
        return None
    best: AdmissionRule | None = None
    best_len = -1
    for rule in rules:
        network = rule.parsed
        if network.version == address.version and address in network \
                and network.prefixlen > best_len:
            best, best_len = rule, network.prefixlen
    return best


def rules_by_dialect(rules: Iterable[AdmissionRule]) -> dict[str, tuple[AdmissionRule, ...]]:
    grouped: dict[str, list[AdmissionRule]] = {}
    for rule in rules:
        grouped.setdefault(rule.dialect, []).append(rule)
    return {dialect: tuple(found) for dialect, found in grouped.items()}


# -- does the app own where the rule writes ----------------------------------------------


def owns_namespace(app: str, namespace: str, claims: Mapping[str, str]) -> bool:
    """Whether `app` owns `namespace` (the most specific claim holding it is the app's)."""
    best: tuple[int, int] | None = None
    owner: str | None = None
    for claim, holder in claims.items():
        if claim_matches(claim, namespace) and (best is None or specificity(claim) > best):
            best, owner = specificity(claim), holder
    return owner == app


def owns_prefix(app: str, prefix: str, claims: Mapping[str, str]) -> bool:
    """Whether `app` owns every namespace starting with `prefix`: one of its pattern claims
    covers the prefix and no other app's claim carves a part out of it."""
    pattern = f"{prefix}*"
    mine = [specificity(c) for c, holder in claims.items()
            if holder == app and c.endswith("*") and prefix.startswith(c[:-1])]
    if not mine:
        return False
    top = max(mine)
    return not any(holder != app and claims_overlap(c, pattern) and specificity(c) >= top
                   for c, holder in claims.items())


def rule_owned(rule: AdmissionRule, claims: Mapping[str, str]) -> bool:
    if rule.dialect in PREFIX_DIALECTS:
        return owns_prefix(rule.app, rule.namespace, claims)
    return owns_namespace(rule.app, rule.namespace, claims)


def check_rule_owned(rule: AdmissionRule, claims: Mapping[str, str]) -> None:
    if rule_owned(rule, claims):
        return
    if rule.dialect in PREFIX_DIALECTS:
        check_claim(f"{rule.namespace}*")
        raise InvalidField(f"app {rule.app!r} does not own every namespace starting with "
                           f"{rule.namespace!r}: give it the claim '{rule.namespace}*' (or a "
                           "shorter prefix) first", "namespace")
    raise InvalidField(f"app {rule.app!r} does not own namespace {rule.namespace!r}: give it "
                       "the claim first", "namespace")


class NotAdmitted(Exception):
    """A dialect request the policy refuses: 403 for a client outside every rule (or a rule
    whose app lost its namespace), 401 for a required token missing or refused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def admitted_principal(
    app: App, claims: Mapping[str, str], address: str | None, user: str | None = None,
    token_prefix: str = "", foreign: tuple[str, ...] | None = None,
) -> Principal:
    """The principal of an admitted dialect request: an operator of the rule's app.
    `foreign` is foreign_claims(app, claims) when the caller has it already."""
    return Principal(
        app=app.name, role=Role.OPERATOR, token_prefix=token_prefix, namespaces=app.namespaces,
        foreign=foreign_claims(app.name, claims) if foreign is None else foreign,
        job_types=app.grants.job_types, user=user, address=address, limits=app.limits,
    )


# -- qschedule applications --------------------------------------------------------------

_QS_NAME = re.compile(r"^[^\s*]{1,255}$")
MIN_QS_TOKEN = 8
MAX_QS_TOKEN = 512


@dataclass(frozen=True, slots=True)
class QscheduleApp:
    """A qschedule application: its numeric id and name (the namespace its jobs are in),
    owned by the cronwheel app `app`; its Q-Server-Token is kept only as a hash."""

    id: int
    name: str
    app: str
    token_hash: str
    created_at: Micros
    note: str = ""


def check_qschedule(qid: int, name: str) -> None:
    if not 0 < qid < 2**63:
        raise InvalidField("a qschedule app id is a positive whole number", "id")
    if not _QS_NAME.match(name):
        raise InvalidField("a qschedule app name is 1-255 characters without spaces or '*'",
                           "name")


def check_qschedule_token(token: str) -> str:
    if not MIN_QS_TOKEN <= len(token) <= MAX_QS_TOKEN or not token.isprintable() \
            or token != token.strip():
        raise InvalidField(f"a Q-Server-Token is {MIN_QS_TOKEN}-{MAX_QS_TOKEN} printable "
                           "characters without surrounding spaces", "token")
    return token


def qschedule_token_hash(token: bytes) -> str:
    """The stored form of a Q-Server-Token (its bytes as sent in the header). A lookup by
    this hash needs no constant-time comparison: the hash of a wrong guess says nothing about
    the right token."""
    return hashlib.sha256(b"qschedule:" + token).hexdigest()
