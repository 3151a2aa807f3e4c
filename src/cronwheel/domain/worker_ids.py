"""Worker ids: issued by the server, unguessable, and bound to the token that registered.

A worker id is `w_<token id>_<32 hex digits>`: 128 random bits (nobody can guess a live
worker's id, even knowing every id issued before it), and the public id of the token whose
registration made it. Only that token may then act for the worker, so an id seen in a list
(`GET /v1/workers`, a run's tasks) is of no use to another worker. Admin tokens may act for
any worker: an admin can mint any worker token anyway, and may need to stop a stray worker.

The binding needs no stored column: the token id is part of the id the server chose.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection

from cronwheel.domain.access import TOKEN_ID_LENGTH, TOKEN_SCHEME, Principal, Role
from cronwheel.domain.errors import Forbidden

RANDOM_BYTES = 16  # 128 bits
_WORKER_ID = re.compile(rf"^w_([a-z0-9]{{{TOKEN_ID_LENGTH}}})_[0-9a-f]{{{RANDOM_BYTES * 2}}}$")


def new_worker_id(principal: Principal) -> str:
    """A fresh id for a worker the principal registers."""
    token_id = _token_id(principal)
    if token_id is None:
        raise Forbidden("only an API token may register a worker", "authorization")
    return f"w_{token_id}_{secrets.token_hex(RANDOM_BYTES)}"


def registered_by(worker_id: str) -> str | None:
    """The id of the token that registered the worker; None for an id the server never
    issued in this form (an old-style id, or a made-up one)."""
    found = _WORKER_ID.match(worker_id)
    return found.group(1) if found else None


def registered_by_any(worker_id: str, token_ids: Collection[str]) -> bool:
    """Whether one of `token_ids` registered the worker (the tokens of one app: its
    workers); an id of the old form is nobody's."""
    token_id = registered_by(worker_id)
    return token_id is not None and token_id in token_ids


def may_act_for(principal: Principal, worker_id: str) -> bool:
    """Whether the principal may heartbeat, lease, report or stop as this worker."""
    if principal.role is Role.ADMIN:
        return True
    token_id = _token_id(principal)
    return (principal.role is Role.WORKER and token_id is not None
            and registered_by(worker_id) == token_id)


def _token_id(principal: Principal) -> str | None:
    scheme, _, token_id = principal.token_prefix.partition("_")
    return token_id if scheme == TOKEN_SCHEME and len(token_id) == TOKEN_ID_LENGTH else None
