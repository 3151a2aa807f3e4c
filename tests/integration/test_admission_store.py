"""The AdmissionStore contract on SQLite and PostgreSQL: rules and qschedule apps as app data,
removed with their app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cronwheel.contracts import AdmissionStore, AppStore
from cronwheel.domain.access import App
from cronwheel.domain.admission import QscheduleApp, new_rule, qschedule_token_hash
from cronwheel.domain.errors import Conflict, NotFound
from cronwheel.domain.time import US_PER_S
from cronwheel.store.sql import SqlStore
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S


@dataclass
class Stores:
    apps: AppStore
    admission: AdmissionStore


@pytest.fixture(params=[s for s in STORES if s != "memory"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    async with open_store(request.param, tmp_path) as store:
        assert isinstance(store, SqlStore)
        await store.apps.create_app(App("team", T0, namespaces=("team-*",)))
        yield Stores(store.apps, store.admission)


def qs(qid: int, name: str, token: bytes, app: str = "team") -> QscheduleApp:
    return QscheduleApp(qid, name, app, qschedule_token_hash(token), T0)


async def test_one_rule_per_dialect_and_network(stores: Stores) -> None:
    rule = new_rule("delayjob", "10.0.0.0/8", "team", "team-a", token=True, created_at=T0)
    await stores.admission.add_rule(rule)
    with pytest.raises(Conflict):
        await stores.admission.add_rule(new_rule("delayjob", "10.0.0.0/8", "team", "team-b"))
    await stores.admission.add_rule(new_rule("kubernetes", "10.0.0.0/8", "team", "team-b"))
    with pytest.raises(NotFound):
        await stores.admission.add_rule(new_rule("delayjob", "10.1.0.0/16", "nobody", "x"))
    assert [(r.dialect, r.token) for r in await stores.admission.rules()] == [
        ("delayjob", True), ("kubernetes", False)]
    assert (await stores.admission.rules())[0] == rule
    with pytest.raises(NotFound):
        await stores.admission.remove_rule("other", "delayjob", "10.0.0.0/8")
    await stores.admission.remove_rule("team", "delayjob", "10.0.0.0/8")
    assert [r.dialect for r in await stores.admission.rules()] == ["kubernetes"]


async def test_qschedule_apps_are_found_by_the_hash_of_their_token(stores: Stores) -> None:
    first = qs(163, "team-demo", b"token-one")
    assert await stores.admission.add_qschedule(first)
    assert await stores.admission.qschedule_by_hash(qschedule_token_hash(b"token-one")) == first
    assert await stores.admission.qschedule_by_hash(qschedule_token_hash(b"token-two")) is None
    assert not await stores.admission.add_qschedule(first, if_absent=True)  # imported again
    for clash in (qs(163, "team-x", b"t-x"), qs(164, "team-demo", b"t-y"),
                  qs(165, "team-z", b"token-one")):
        with pytest.raises(Conflict):
            await stores.admission.add_qschedule(clash, if_absent=True)
    assert [q.id for q in await stores.admission.qschedule_apps("team")] == [163]


async def test_removing_an_app_removes_its_rules_and_qschedule_apps(stores: Stores) -> None:
    await stores.admission.add_rule(new_rule("dispatchserver", "::1/128", "team", "team-d:"))
    await stores.admission.add_qschedule(qs(1, "team-q", b"token-q"))
    await stores.apps.remove_app("team")
    assert await stores.admission.rules() == []
    assert await stores.admission.qschedule_apps() == []
