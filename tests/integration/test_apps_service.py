"""Apps, tokens and authentication as use cases, and the first start's admin token."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from cronwheel.apps_service import FACTS_TTL_US, AppService, system_claims
from cronwheel.clock import ManualClock
from cronwheel.domain.access import (
    App,
    AppLimits,
    Grants,
    Role,
    TokenRecord,
    can_read,
    can_work,
    can_write,
    hash_token,
    new_token,
)
from cronwheel.domain.errors import Conflict, InvalidField, NotFound
from cronwheel.domain.time import US_PER_S
from cronwheel.settings import Settings
from cronwheel.store.apps import SqlAppStore
from cronwheel.store.memory_apps import MemoryAppStore
from cronwheel.store.sql import SqlStore

T0 = 1_800_000_000 * US_PER_S
CLAIMS = system_claims("default", "delayjob", "dispatch:", ["qschedule.demo"])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=[False, True], ids=["nodes", "single-node"])
def apps(clock: ManualClock, request: pytest.FixtureRequest) -> AppService:
    """Both modes: reading each token every call, and a single node's cache of live ones."""
    return AppService(MemoryAppStore(), clock, single_node=request.param)


class CountingStore(MemoryAppStore):
    """Counts token reads, and can hold one open while another call runs."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.app_reads = 0
        self.during_read: Callable[[], Awaitable[None]] | None = None

    async def list_apps(self) -> list[App]:
        self.app_reads += 1
        await asyncio.sleep(0)  # let the other callers find the cache stale meanwhile
        return await super().list_apps()

    async def get_token(self, token_id: str) -> TokenRecord | None:
        self.reads += 1
        record = await super().get_token(token_id)
        if self.during_read is not None:
            during, self.during_read = self.during_read, None
            await during()
        return record


async def test_a_single_node_reads_a_live_token_once(clock: ManualClock) -> None:
    store = CountingStore()
    apps = AppService(store, clock, single_node=True)
    await apps.create_app("billing")
    issued = await apps.create_token("billing", Role.OPERATOR)
    for _ in range(3):
        assert await apps.authenticate(issued.token) is not None
    assert store.reads == 1
    forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    assert await apps.authenticate(forged) is None  # the cached hash is still checked
    await apps.revoke_token("billing", issued.record.id)
    assert await apps.authenticate(issued.token) is None
    assert await apps.authenticate(issued.token) is None
    assert store.reads == 3  # a revoked token is never kept: read on every call


async def test_callers_that_find_the_apps_stale_together_read_them_once(
    clock: ManualClock,
) -> None:
    store = CountingStore()
    apps = AppService(store, clock, single_node=True)
    await apps.create_app("billing")
    issued = await apps.create_token("billing", Role.OPERATOR)
    await apps.authenticate(issued.token)
    clock.advance(FACTS_TTL_US)
    before = store.app_reads
    found = await asyncio.gather(*(apps.authenticate(issued.token) for _ in range(20)))
    assert all(p is not None and p.app == "billing" for p in found)
    assert store.app_reads == before + 1


async def test_a_token_read_while_it_is_revoked_is_not_kept(clock: ManualClock) -> None:
    store = CountingStore()
    apps = AppService(store, clock, single_node=True)
    await apps.create_app("billing")
    issued = await apps.create_token("billing", Role.OPERATOR)

    async def revoke() -> None:
        await apps.revoke_token("billing", issued.record.id)

    store.during_read = revoke  # the read sees the token live; the revocation lands after
    assert await apps.authenticate(issued.token) is not None  # the request already under way
    assert await apps.authenticate(issued.token) is None  # every later one is refused


async def test_a_new_token_authenticates_as_its_app_and_role(apps: AppService) -> None:
    await apps.create_app("billing", ["billing", "billing:*"], note="team b")
    issued = await apps.create_token("billing", Role.OPERATOR, label="ci")
    assert issued.record.hash == hash_token(issued.token)
    assert issued.token not in repr(issued.record)
    principal = await apps.authenticate(issued.token, address="10.1.2.3")
    assert principal is not None
    assert (principal.app, principal.role, principal.token_prefix) == (
        "billing", Role.OPERATOR, issued.record.prefix)
    assert principal.address == "10.1.2.3"
    assert can_write(principal, "billing:eu") and not can_read(principal, "default")


async def test_wrong_unknown_and_malformed_tokens_do_not_authenticate(apps: AppService) -> None:
    await apps.create_app("billing")
    issued = await apps.create_token("billing", Role.VIEWER)
    forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    unknown, _ = new_token()
    for raw in (forged, unknown, "", "Bearer " + issued.token, issued.record.prefix):
        assert await apps.authenticate(raw) is None


async def test_revocation_takes_effect_on_the_next_call(apps: AppService) -> None:
    await apps.create_app("billing")
    issued = await apps.create_token("billing", Role.OPERATOR)
    assert await apps.authenticate(issued.token) is not None
    revoked = await apps.revoke_token("billing", issued.record.prefix)  # by prefix
    assert revoked.revoked_at == T0
    assert await apps.authenticate(issued.token) is None
    with pytest.raises(NotFound):
        await apps.revoke_token("billing", "zzzz9999")


async def test_an_expired_token_stops_at_its_expiry(apps: AppService, clock: ManualClock) -> None:
    await apps.create_app("billing")
    issued = await apps.create_token("billing", Role.VIEWER, expires_at=T0 + 60 * US_PER_S)
    clock.advance(60 * US_PER_S - 1)
    assert await apps.authenticate(issued.token) is not None
    clock.advance(1)
    assert await apps.authenticate(issued.token) is None
    with pytest.raises(InvalidField) as caught:
        await apps.create_token("billing", Role.VIEWER, expires_at=T0)
    assert caught.value.field == "expires_at"


async def test_removing_an_app_ends_its_tokens(apps: AppService) -> None:
    await apps.create_app("billing", ["billing"])
    await apps.create_app("ops")
    issued = await apps.create_token("billing", Role.OPERATOR)
    admin = await apps.authenticate((await apps.create_token("ops", Role.ADMIN)).token)
    assert admin is not None
    with pytest.raises(Conflict):
        await apps.remove_app("ops", by=admin)  # its own app: refused, no lock-out
    await apps.remove_app("billing", by=admin)
    assert await apps.authenticate(issued.token) is None
    with pytest.raises(NotFound):
        await apps.list_tokens("billing")


async def test_worker_tokens_carry_their_groups(apps: AppService) -> None:
    await apps.create_app("etl")
    issued = await apps.create_token("etl", Role.WORKER, groups=["nightly", "gpu-*"])
    principal = await apps.authenticate(issued.token)
    assert principal is not None and principal.groups == ("gpu-*", "nightly")
    assert can_work(principal, "gpu-a") and not can_work(principal, "default")


async def test_app_fields_are_validated_and_updated(apps: AppService) -> None:
    with pytest.raises(InvalidField) as caught:
        await apps.create_app("Bad Name")
    assert caught.value.field == "name"
    with pytest.raises(InvalidField) as caught:
        await apps.create_app("ok", ["a*b"])
    assert caught.value.field == "namespaces"
    await apps.create_app("ok")
    changed = await apps.update_app("ok", grants=Grants(frozenset({"shell"})),
                                    limits=AppLimits(max_batch=5), note="n")
    assert await apps.get_app("ok") == changed
    issued = await apps.create_token("ok", Role.OPERATOR)
    principal = await apps.authenticate(issued.token)
    assert principal is not None and principal.job_types == {"shell"}
    assert principal.limits.max_batch == 5


async def test_namespaces_move_between_apps_by_specificity(apps: AppService) -> None:
    await apps.create_app("system", ["dispatch:*"])
    await apps.create_app("team-a")
    app = await apps.add_namespace("team-a", "dispatch:team-a")
    assert app.namespaces == ("dispatch:team-a",)
    system = await apps.authenticate((await apps.create_token("system", Role.OPERATOR)).token)
    team = await apps.authenticate((await apps.create_token("team-a", Role.OPERATOR)).token)
    assert system is not None and team is not None
    assert can_write(team, "dispatch:team-a") and not can_write(system, "dispatch:team-a")
    assert can_write(system, "dispatch:team-b")
    await apps.remove_namespace("team-a", "dispatch:team-a")
    system = await apps.authenticate(
        (await apps.create_token("system", Role.OPERATOR)).token)
    assert system is not None and can_write(system, "dispatch:team-a")


async def test_first_start_writes_one_admin_token_readable_by_this_user_only(
    apps: AppService, tmp_path: Path
) -> None:
    path = tmp_path / "config" / "cronwheel" / "tokens" / "127.0.0.1_1989"
    done = await apps.first_start(CLAIMS, path)
    assert done.created and done.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = path.read_text().strip()
    principal = await apps.authenticate(raw)
    assert principal is not None and principal.role is Role.ADMIN and principal.app == "system"
    system = await apps.get_app("system")
    assert system.namespaces == ("default", "delayjob", "dispatch:*", "qschedule.demo")
    [record] = await apps.list_tokens("system")
    assert record.hash == hash_token(raw)  # only the hash is kept
    # a second start finds a live admin token: nothing is made or written
    assert not (await apps.first_start(CLAIMS, path)).created
    assert path.read_text().strip() == raw
    assert sorted(os.listdir(path.parent)) == ["127.0.0.1_1989"]


async def test_first_start_makes_a_new_token_once_every_admin_is_revoked(
    apps: AppService, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    await apps.first_start(CLAIMS, path)
    first = path.read_text().strip()
    [record] = await apps.list_tokens("system")
    await apps.revoke_token("system", record.id)
    assert (await apps.first_start(CLAIMS, path)).created
    assert path.read_text().strip() != first
    assert await apps.authenticate(path.read_text().strip()) is not None


async def test_a_provisioned_admin_token_is_stored_hashed_and_no_file_is_written(
    apps: AppService, tmp_path: Path
) -> None:
    raw, parts = new_token()
    path = tmp_path / "token"
    done = await apps.first_start(CLAIMS, path, provisioned=raw)
    assert done.created and done.token_id == parts.id and not path.exists()
    principal = await apps.authenticate(raw)
    assert principal is not None and principal.role is Role.ADMIN
    assert not (await apps.first_start(CLAIMS, path, provisioned=raw)).created  # restart
    with pytest.raises(InvalidField):
        await apps.first_start(CLAIMS, path, provisioned="not-a-token")
    clash = raw[:-1] + ("a" if raw[-1] != "a" else "b")  # same id, another secret
    with pytest.raises(Conflict):
        await apps.first_start(CLAIMS, path, provisioned=clash)


async def test_an_unwritable_token_path_fails_the_start_clearly(
    apps: AppService, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RuntimeError, match="CRONWHEEL_ADMIN_TOKEN"):
        await apps.first_start(CLAIMS, blocker / "sub" / "token")
    assert await apps.list_apps() == []


async def test_first_start_on_sqlite_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    path = tmp_path / "token"
    for expect_created in (True, False):
        store = SqlStore(url)
        await store.start()
        try:
            apps = AppService(SqlAppStore.of(store), clock)
            assert (await apps.first_start(CLAIMS, path)).created is expect_created
            assert await apps.authenticate(path.read_text().strip()) is not None
        finally:
            await store.close()


async def test_other_nodes_see_revocations_at_once_and_claims_within_a_second(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    try:
        here, there = (AppService(SqlAppStore.of(store), clock) for _ in range(2))
        await here.create_app("team", ["team"])
        issued = await here.create_token("team", Role.OPERATOR)
        seen = await there.authenticate(issued.token)
        assert seen is not None and not can_write(seen, "extra")
        await here.add_namespace("team", "extra")
        seen = await there.authenticate(issued.token)  # the other node's cached claims
        assert seen is not None and not can_write(seen, "extra")
        clock.advance(FACTS_TTL_US)
        seen = await there.authenticate(issued.token)
        assert seen is not None and can_write(seen, "extra")
        await here.revoke_token("team", issued.record.id)
        assert await there.authenticate(issued.token) is None  # tokens are never cached
    finally:
        await store.close()


def test_settings_never_show_the_admin_token() -> None:
    raw, _ = new_token()
    settings = Settings(admin_token=raw)
    assert raw not in repr(settings) and raw not in str(settings.model_dump())
    assert settings.admin_token is not None and settings.admin_token.get_secret_value() == raw


# -- Sentinel appKeys ----------------------------------------------------------------------


async def test_a_sentinel_key_is_stored_sealed_and_admits_its_app(
    apps: AppService, clock: ManualClock
) -> None:
    from cronwheel.domain.app_keys import CredentialRefused, app_token
    from cronwheel.secretbox import SecretBox

    apps.box = SecretBox(bytes(32))
    await apps.create_app("etl", ["etl"], grants=Grants(frozenset({"shell"})))
    key = await apps.set_sentinel_key("etl")
    sealed = await apps.store.get_secret("etl", "sentinel")
    assert sealed is not None and key not in sealed
    now_s = clock.now() // US_PER_S
    principal = await apps.sentinel_principal("etl", app_token(key, now_s), "alice", "10.0.0.9")
    assert (principal.app, principal.role, principal.user) == ("etl", Role.OPERATOR, "alice")
    assert can_write(principal, "etl") and "shell" in principal.job_types
    for app, token, field in [
        ("etl", app_token(key, now_s - 181), "appToken"),
        ("etl", app_token("not-the-key-0123", now_s), "appToken"),
        ("nobody", app_token(key, now_s), "appName"),
    ]:
        with pytest.raises(CredentialRefused) as refused:
            await apps.sentinel_principal(app, token)
        assert refused.value.field == field
    await apps.create_app("keyless")
    with pytest.raises(CredentialRefused):
        await apps.sentinel_principal("keyless", app_token(key, now_s))
    assert await apps.set_sentinel_key("etl", "a-chosen-key-0001") == "a-chosen-key-0001"
    with pytest.raises(CredentialRefused):  # the old key no longer admits
        await apps.sentinel_principal("etl", app_token(key, now_s))
    await apps.remove_sentinel_key("etl")
    assert not await apps.has_sentinel_key("etl")


async def test_a_key_rotation_reseals_every_secret(apps: AppService, clock: ManualClock) -> None:
    from cronwheel.domain.app_keys import app_token
    from cronwheel.secretbox import SecretBox

    old, new = bytes(32), bytes(range(32))
    apps.box = SecretBox(old)
    await apps.create_app("etl")
    key = await apps.set_sentinel_key("etl")
    apps.box = SecretBox(new, previous=[old])
    assert await apps.reseal_secrets() == 1
    assert await apps.reseal_secrets() == 0
    apps.box = SecretBox(new)  # the old key can go now
    token = app_token(key, clock.now() // US_PER_S)
    assert (await apps.sentinel_principal("etl", token)).app == "etl"
    apps.box = SecretBox(old)  # a node started with another key: it starts, and says so
    assert await apps.reseal_secrets() == 0
