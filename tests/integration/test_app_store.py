"""The AppStore contract, one suite run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cronwheel.contracts import AppStore
from cronwheel.domain.access import App, AppLimits, Grants, Role, TokenRecord, hash_token
from cronwheel.domain.errors import Conflict, NotFound
from cronwheel.domain.time import US_PER_S
from cronwheel.store.apps import SqlAppStore
from cronwheel.store.memory_apps import MemoryAppStore
from cronwheel.store.sql import SqlStore
from tests.stores import STORES, open_store

T0 = 1_800_000_000 * US_PER_S


@pytest.fixture(params=STORES)
async def apps(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AppStore]:
    if request.param == "memory":
        yield MemoryAppStore()
        return
    async with open_store(request.param, tmp_path) as store:
        assert isinstance(store, SqlStore)
        yield SqlAppStore.of(store)


def token(token_id: str, app: str = "billing", role: Role = Role.OPERATOR,
          **fields: object) -> TokenRecord:
    return TokenRecord(id=token_id, app=app, role=role, hash=hash_token(f"cw_{token_id}_x"),
                       created_at=T0, **fields)  # type: ignore[arg-type]


async def test_an_app_is_created_once_with_its_claims(apps: AppStore) -> None:
    app = App("billing", T0, Grants(frozenset({"shell"})), AppLimits(max_jobs=10), "team b",
              ("billing", "billing:*"))
    await apps.create_app(app)
    assert await apps.get_app("billing") == app
    with pytest.raises(Conflict):
        await apps.create_app(App("billing", T0))
    assert await apps.get_app("nobody") is None
    assert await apps.claims() == {"billing": "billing", "billing:*": "billing"}


async def test_a_claim_held_by_another_app_refuses_the_whole_new_app(apps: AppStore) -> None:
    await apps.create_app(App("a", T0, namespaces=("shared",)))
    with pytest.raises(Conflict):
        await apps.create_app(App("b", T0, namespaces=("own", "shared")))
    assert await apps.get_app("b") is None
    assert await apps.claims() == {"shared": "a"}


async def test_namespaces_are_added_once_and_belong_to_one_app(apps: AppStore) -> None:
    await apps.create_app(App("a", T0))
    await apps.create_app(App("b", T0))
    await apps.add_namespace("a", "orders", T0)
    await apps.add_namespace("a", "orders", T0)  # again: no-op
    with pytest.raises(Conflict):
        await apps.add_namespace("b", "orders", T0)
    with pytest.raises(NotFound):
        await apps.add_namespace("ghost", "x", T0)
    await apps.add_namespace("b", "orders:*", T0)  # a pattern is a claim of its own
    assert await apps.claims() == {"orders": "a", "orders:*": "b"}
    with pytest.raises(NotFound):
        await apps.remove_namespace("b", "orders")
    await apps.remove_namespace("a", "orders")
    app = await apps.get_app("a")
    assert app is not None and app.namespaces == ()


async def test_apps_are_listed_by_name_with_their_claims(apps: AppStore) -> None:
    for name, claims in (("zeta", ("z",)), ("alpha", ("a2", "a1")), ("mid", ())):
        await apps.create_app(App(name, T0, namespaces=claims))
    listed = await apps.list_apps()
    assert [(a.name, a.namespaces) for a in listed] == [
        ("alpha", ("a1", "a2")), ("mid", ()), ("zeta", ("z",))]


async def test_update_changes_grants_limits_and_note_only(apps: AppStore) -> None:
    await apps.create_app(App("a", T0, namespaces=("a",)))
    await apps.update_app(App("a", T0 + 5, Grants(frozenset({"python"})),
                              AppLimits(submits_per_second=2.5), "new note", ()))
    assert await apps.get_app("a") == App("a", T0, Grants(frozenset({"python"})),
                                          AppLimits(submits_per_second=2.5), "new note", ("a",))
    with pytest.raises(NotFound):
        await apps.update_app(App("ghost", T0))


async def test_tokens_belong_to_an_existing_app_and_have_unique_ids(apps: AppStore) -> None:
    with pytest.raises(NotFound):
        await apps.add_token(token("aaaa0001"))
    await apps.create_app(App("billing", T0))
    worker = token("aaaa0002", role=Role.WORKER, groups=("gpu", "etl*"), label="w1",
                   expires_at=T0 + US_PER_S)
    await apps.add_token(worker)
    await apps.add_token(token("aaaa0001"))
    with pytest.raises(Conflict):
        await apps.add_token(token("aaaa0001"))
    assert await apps.get_token("aaaa0002") == worker
    assert await apps.get_token("zzzz9999") is None
    assert [t.id for t in await apps.list_tokens("billing")] == ["aaaa0001", "aaaa0002"]
    assert await apps.list_tokens("other") == []


async def test_revoking_keeps_the_first_instant_and_stays_listed(apps: AppStore) -> None:
    await apps.create_app(App("billing", T0))
    await apps.create_app(App("other", T0))
    await apps.add_token(token("aaaa0001"))
    with pytest.raises(NotFound):
        await apps.revoke_token("other", "aaaa0001", T0)  # not its token
    revoked = await apps.revoke_token("billing", "aaaa0001", T0 + 7)
    assert revoked.revoked_at == T0 + 7 and not revoked.live(T0 + 8)
    again = await apps.revoke_token("billing", "aaaa0001", T0 + 9)
    assert again.revoked_at == T0 + 7
    assert await apps.get_token("aaaa0001") == revoked
    assert [t.revoked_at for t in await apps.list_tokens("billing")] == [T0 + 7]


async def test_removing_an_app_removes_its_claims_and_tokens(apps: AppStore) -> None:
    await apps.create_app(App("a", T0, namespaces=("a", "a:*")))
    await apps.create_app(App("b", T0, namespaces=("b",)))
    await apps.add_token(token("aaaa0001", app="a"))
    await apps.add_token(token("bbbb0001", app="b"))
    await apps.remove_app("a")
    assert await apps.get_app("a") is None
    assert await apps.get_token("aaaa0001") is None
    assert await apps.claims() == {"b": "b"}
    assert await apps.get_token("bbbb0001") is not None
    with pytest.raises(NotFound):
        await apps.remove_app("a")
    await apps.create_app(App("a", T0, namespaces=("a",)))  # the name and claims are free
    assert await apps.list_tokens("a") == []


async def test_bootstrap_adds_an_admin_only_while_none_is_live(apps: AppStore) -> None:
    await apps.create_app(App("team", T0, namespaces=("dispatch:*",)))
    system = App("system", T0)
    first = token("boot0001", app="system", role=Role.ADMIN, expires_at=T0 + 10)
    assert await apps.bootstrap(system, ["default", "dispatch:*"], first, T0)
    assert await apps.claims() == {"default": "system", "dispatch:*": "team"}
    second = token("boot0002", app="system", role=Role.ADMIN)
    assert not await apps.bootstrap(system, ["default"], second, T0 + 5)
    assert await apps.get_token("boot0002") is None
    # once the first has expired, a new one may be made; the app is kept as it is
    assert await apps.bootstrap(system, ["default", "delayjob"], second, T0 + 10)
    assert [t.id for t in await apps.list_tokens("system")] == ["boot0001", "boot0002"]
    assert (await apps.claims())["delayjob"] == "system"


async def test_bootstrap_can_add_a_provisioned_admin_beside_live_ones(apps: AppStore) -> None:
    system = App("system", T0)
    assert await apps.bootstrap(system, ["default"], token("boot0001", app="system",
                                                            role=Role.ADMIN), T0)
    extra = token("prov0001", app="system", role=Role.ADMIN)
    assert await apps.bootstrap(system, ["default"], extra, T0, only_if_no_admin=False)
    assert not await apps.bootstrap(system, ["default"], extra, T0, only_if_no_admin=False)
    assert len(await apps.list_tokens("system")) == 2


async def test_sealed_secrets_are_kept_per_app_and_kind_and_go_with_the_app(
    apps: AppStore,
) -> None:
    await apps.create_app(App("billing", T0))
    with pytest.raises(NotFound):
        await apps.set_secret("nobody", "sentinel", "k1:xx", T0)
    await apps.set_secret("billing", "sentinel", "k1:aa", T0)
    await apps.set_secret("billing", "sentinel", "k1:bb", T0)  # replaced
    assert await apps.get_secret("billing", "sentinel") == "k1:bb"
    assert await apps.get_secret("billing", "other") is None
    assert await apps.sealed_secrets() == [("billing", "sentinel", "k1:bb")]
    assert await apps.remove_secret("billing", "sentinel") is True
    assert await apps.remove_secret("billing", "sentinel") is False
    await apps.set_secret("billing", "sentinel", "k1:cc", T0)
    await apps.remove_app("billing")
    assert await apps.sealed_secrets() == []
