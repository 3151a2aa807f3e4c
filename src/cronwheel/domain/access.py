"""Who may do what: apps own namespaces, tokens carry a role, a principal is checked purely.

An app (a tenant) claims namespaces by exact name (`billing`) or by prefix pattern
(`dispatch:*`; `*` alone claims every namespace). When claims of two apps overlap, the most
specific claim owns the namespace: an exact name beats any pattern, a longer prefix beats a
shorter one. So the first-start `system` app can hold `dispatch:*` while an admin hands
`dispatch:team-a` to another app.

A token is `cw_<id>_<secret>`: the id (8 characters) is public and names the token in lists
and the audit trail (its prefix `cw_<id>`); the secret is 256 random bits. Only a SHA-256 of
the whole token is stored; a fast hash is right because the token is random, not a password.

Nothing here does I/O: the service layer loads records and builds a `Principal`; the API asks
the principal's questions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.time import Micros

TOKEN_SCHEME = "cw"
TOKEN_ID_LENGTH = 8
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_TOKEN = re.compile(r"^cw_([a-z0-9]{8})_([A-Za-z0-9_-]{32,128})$")
_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_CLAIM = re.compile(r"^[^\s*]{1,255}\*?$|^\*$")
_GROUP = re.compile(r"^[^\s*]{1,255}\*?$|^\*$")
MAX_LABEL = 255
ALL = "*"
SYSTEM_APP = "system"
CODE_TYPES = frozenset({"shell", "python", "sql"})  # built-in worker job types that run code
NO_CODE_TYPES = frozenset({"http"})  # built-in worker job types that run none


class Role(StrEnum):
    ADMIN = "admin"  # everything, apps and tokens included
    OPERATOR = "operator"  # create, change, trigger and kill jobs in its app's namespaces
    VIEWER = "viewer"  # read its app's namespaces
    WORKER = "worker"  # register, lease and report tasks of its worker groups


# -- names and claims ----------------------------------------------------------------------


def check_app_name(name: str, field_name: str = "name") -> str:
    if not _APP_NAME.match(name):
        raise InvalidField(
            "an app name is 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a "
            "letter or digit", field_name)
    return name


def check_claim(claim: str, field_name: str = "namespace") -> str:
    """A namespace claim: an exact name, or a prefix ending in a single trailing `*`."""
    if not _CLAIM.match(claim):
        raise InvalidField(
            "a namespace is 1-255 characters without spaces; a trailing '*' claims every "
            "namespace starting with what comes before it", field_name)
    return claim


def check_group(group: str, field_name: str = "groups") -> str:
    if not _GROUP.match(group):
        raise InvalidField(
            "a worker group is 1-255 characters without spaces, with an optional trailing '*'",
            field_name)
    return group


def claim_matches(claim: str, name: str) -> bool:
    if claim.endswith("*"):
        return name.startswith(claim[:-1])
    return claim == name


def specificity(claim: str) -> tuple[int, int]:
    """Orders claims matching one name: exact beats any pattern, then the longer prefix."""
    return (0, len(claim) - 1) if claim.endswith("*") else (1, len(claim))


def owner_of(name: str, claims: Mapping[str, str]) -> str | None:
    """The app owning namespace `name`, given every claim (claim -> app); None if unclaimed."""
    best: tuple[int, int] | None = None
    owner: str | None = None
    for claim, app in claims.items():
        if claim_matches(claim, name) and (best is None or specificity(claim) > best):
            best, owner = specificity(claim), app
    return owner


def claims_overlap(a: str, b: str) -> bool:
    """Whether some namespace matches both claims."""
    if a.endswith("*") and b.endswith("*"):
        return a[:-1].startswith(b[:-1]) or b[:-1].startswith(a[:-1])
    if a.endswith("*"):
        return b.startswith(a[:-1])
    if b.endswith("*"):
        return a.startswith(b[:-1])
    return a == b


# -- app values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppLimits:
    """Per-app overrides of the server's limits; None keeps the server's default."""

    max_jobs: int | None = None  # jobs held
    submits_per_second: float | None = None  # token bucket rate
    submit_burst: int | None = None  # token bucket size
    max_batch: int | None = None
    max_payload_bytes: int | None = None
    min_interval_seconds: float | None = None  # shortest repeat of a schedule
    fires_per_second: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AppLimits:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidField(f"unknown limit {unknown[0]!r}", f"limits.{unknown[0]}")
        for name, value in data.items():
            _check_limit(name, value)
        return cls(**dict(data))


def _check_limit(name: str, value: Any) -> None:
    if value is None:
        return
    whole = name in ("max_jobs", "submit_burst", "max_batch", "max_payload_bytes")
    kind = "a positive integer" if whole else "a positive number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise InvalidField(f"limit {name} must be {kind}", f"limits.{name}")
    if not 0 < value < 2**53:  # also refuses NaN
        raise InvalidField(f"limit {name} must be {kind} below 2**53", f"limits.{name}")


@dataclass(frozen=True, slots=True)
class Grants:
    """What an admin granted an app beyond the defaults: worker job types that run code."""

    job_types: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"job_types": sorted(self.job_types)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grants:
        types = data.get("job_types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise InvalidField("job_types is a list of job type names", "grants.job_types")
        return cls(job_types=frozenset(types))


@dataclass(frozen=True, slots=True)
class App:
    name: str
    created_at: Micros
    grants: Grants = Grants()
    limits: AppLimits = AppLimits()
    note: str = ""
    namespaces: tuple[str, ...] = ()  # its claims, sorted


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenParts:
    id: str
    secret: str

    @property
    def prefix(self) -> str:
        return f"{TOKEN_SCHEME}_{self.id}"


def new_token() -> tuple[str, TokenParts]:
    """A fresh random token and its parts: 40 bits of public id, 256 bits of secret."""
    token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(TOKEN_ID_LENGTH))
    parts = TokenParts(token_id, secrets.token_urlsafe(32))
    return f"{parts.prefix}_{parts.secret}", parts


def parse_token(raw: str) -> TokenParts | None:
    """The parts of a well-formed token; None for anything else (never raises)."""
    found = _TOKEN.match(raw)
    return TokenParts(found.group(1), found.group(2)) if found else None


def token_prefix(token_id: str) -> str:
    return f"{TOKEN_SCHEME}_{token_id}"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_matches(raw: str, stored_hash: str) -> bool:
    """Constant-time: how much of the hash matched does not show in the time taken."""
    return hmac.compare_digest(hash_token(raw).encode(), stored_hash.encode())


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: never the token itself, only its hash."""

    id: str
    app: str
    role: Role
    hash: str
    created_at: Micros
    groups: tuple[str, ...] = ()  # worker groups, for worker tokens
    label: str = ""
    expires_at: Micros | None = None
    revoked_at: Micros | None = None

    @property
    def prefix(self) -> str:
        return token_prefix(self.id)

    def live(self, now: Micros) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def check_token_fields(
    role: Role, groups: Iterable[str], label: str, expires_at: Micros | None, now: Micros
) -> tuple[str, ...]:
    """Validate what a new token is made of; returns its groups, sorted and distinct."""
    names = tuple(sorted({check_group(g) for g in groups}))
    if role is Role.WORKER and not names:
        raise InvalidField("a worker token names the worker groups it serves", "groups")
    if role is not Role.WORKER and names:
        raise InvalidField("only worker tokens have worker groups", "groups")
    if len(label) > MAX_LABEL:
        raise InvalidField(f"a label is at most {MAX_LABEL} characters", "label")
    if expires_at is not None and expires_at <= now:
        raise InvalidField("expires_at is in the past", "expires_at")
    return names


# -- principals ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its app, role, and what it may touch.

    `namespaces` are its app's claims; `foreign` are other apps' claims that are more
    specific than one of them (carved out of its reach). Both are enough to answer, for any
    namespace, whether its app owns it.
    """

    app: str
    role: Role
    token_prefix: str
    namespaces: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    job_types: frozenset[str] = frozenset()
    user: str | None = None  # a dialect's end user, for the audit trail
    address: str | None = None  # the client's address, for the audit trail
    limits: AppLimits = field(default_factory=AppLimits)


def owns(principal: Principal, namespace: str) -> bool:
    """Whether the principal's app owns the namespace (most specific claim wins)."""
    mine = [specificity(c) for c in principal.namespaces if claim_matches(c, namespace)]
    if not mine:
        return False
    theirs = [specificity(c) for c in principal.foreign if claim_matches(c, namespace)]
    return not theirs or max(mine) > max(theirs)


def can_admin(principal: Principal) -> bool:
    return principal.role is Role.ADMIN


def can_read(principal: Principal, namespace: str) -> bool:
    if principal.role is Role.ADMIN:
        return True
    return principal.role in (Role.OPERATOR, Role.VIEWER) and owns(principal, namespace)


def can_write(principal: Principal, namespace: str) -> bool:
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.OPERATOR and owns(principal, namespace)


def can_work(principal: Principal, group: str) -> bool:
    """Whether the principal may serve worker group `group` (register, lease, report)."""
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.WORKER and any(claim_matches(g, group)
                                                 for g in principal.groups)


def runs_code(job_type: str, installed: Collection[str] = NO_CODE_TYPES) -> bool:
    """shell, python and sql run code, and so does every command type: a type the server does
    not have `installed` (built in or a plugin) is one a worker runs with its own command line
    and the job's content (domain/command_types.py). http and plugins do not."""
    return job_type in CODE_TYPES or job_type not in installed


def may_use_type(
    principal: Principal, job_type: str, installed: Collection[str] = NO_CODE_TYPES
) -> bool:
    """Worker job types that run code need a grant naming the type (there is no wildcard:
    a command type a worker starts to offer later must not become usable unasked); the others
    are open to writers."""
    if principal.role is Role.ADMIN or not runs_code(job_type, installed):
        return True
    return job_type in principal.job_types


def foreign_claims(app: str, claims: Mapping[str, str]) -> tuple[str, ...]:
    """Other apps' claims that could take a namespace from one of `app`'s claims."""
    mine = [c for c, owner in claims.items() if owner == app]
    return tuple(sorted(
        c for c, owner in claims.items()
        if owner != app and any(claims_overlap(c, m) and specificity(c) > specificity(m)
                                for m in mine)
    ))


def principal_for(
    record: TokenRecord, app: App, claims: Mapping[str, str], address: str | None = None
) -> Principal:
    """The principal a live token stands for."""
    return Principal(
        app=app.name, role=record.role, token_prefix=record.prefix,
        namespaces=app.namespaces, foreign=foreign_claims(app.name, claims),
        groups=record.groups, job_types=app.grants.job_types, address=address,
        limits=app.limits,
    )
