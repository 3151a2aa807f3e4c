"""Which workers a caller sees: an admin every worker, anyone else only the workers that
tokens of its own app registered (issue 10: a listing shows only what the caller may see).

Names, hosts and groups of other apps' workers are theirs to know. A worker's id names the
token that registered it (domain/worker_ids.py) and an app's token ids are one query away,
so no stored column says whose a worker is. Revoked and expired tokens still count: their
workers stay their app's until they go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from cronwheel.apps_service import AppService
from cronwheel.domain.worker_ids import registered_by_any

T = TypeVar("T")


async def visible(
    apps: AppService, app: str, admin: bool, found: Sequence[T], worker_id: Callable[[T], str]
) -> list[T]:
    """The items of `found` (workers, or what holds one) whose worker the caller, of `app`,
    may see; `worker_id` reads an item's worker id."""
    if admin:
        return list(found)
    if not found:
        return []
    mine = await apps.token_ids(app)
    return [item for item in found if registered_by_any(worker_id(item), mine)]
