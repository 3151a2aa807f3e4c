"""The pure access model: claims, tokens and what each role may do."""

from __future__ import annotations

import math

import pytest

from cronwheel.domain.access import (
    App,
    AppLimits,
    Grants,
    Principal,
    Role,
    TokenRecord,
    can_admin,
    can_read,
    can_work,
    can_write,
    check_app_name,
    check_claim,
    check_token_fields,
    claims_overlap,
    foreign_claims,
    hash_token,
    may_use_type,
    new_token,
    owner_of,
    owns,
    parse_token,
    principal_for,
    token_matches,
)
from cronwheel.domain.errors import InvalidField

CLAIMS = {"*": "system", "dispatch:*": "system", "dispatch:team-a": "team-a",
          "dispatch:team-b*": "team-b", "billing": "billing", "billing:*": "billing"}


def who(app: str, role: Role, groups: tuple[str, ...] = ()) -> Principal:
    namespaces = tuple(sorted(c for c, owner in CLAIMS.items() if owner == app))
    return Principal(app, role, "cw_abcdefgh", namespaces, foreign_claims(app, CLAIMS), groups)


def test_tokens_are_random_well_formed_and_parse_back() -> None:
    raw, parts = new_token()
    again, _ = new_token()
    assert raw != again
    assert raw.startswith(f"cw_{parts.id}_") and parts.prefix == f"cw_{parts.id}"
    assert len(parts.secret) >= 43  # 256 bits in URL-safe base64
    assert parse_token(raw) == parts


@pytest.mark.parametrize("raw", [
    "", "cw_", "cw_abcdefgh", "cw_abcdefgh_short", "xx_abcdefgh_" + "a" * 40,
    "cw_ABCDEFGH_" + "a" * 40, "cw_abcdefg_" + "a" * 40, "cw_abcdefgh_" + "a" * 40 + " ",
    "cw_abcdefgh_" + "a" * 129, "Bearer cw_abcdefgh_" + "a" * 40, "cw_abcdefgh_" + "é" * 40,
])
def test_anything_but_a_well_formed_token_parses_to_none(raw: str) -> None:
    assert parse_token(raw) is None


def test_a_token_matches_only_its_own_hash() -> None:
    raw, _ = new_token()
    other, _ = new_token()
    stored = hash_token(raw)
    assert len(stored) == 64
    assert token_matches(raw, stored)
    assert not token_matches(other, stored)
    assert not token_matches(raw[:-1], stored)


def test_the_most_specific_claim_owns_a_namespace() -> None:
    assert owner_of("dispatch:team-a", CLAIMS) == "team-a"
    assert owner_of("dispatch:team-a2", CLAIMS) == "system"  # exact claim, not a prefix
    assert owner_of("dispatch:team-b", CLAIMS) == "team-b"
    assert owner_of("dispatch:team-b-x", CLAIMS) == "team-b"
    assert owner_of("dispatch:other", CLAIMS) == "system"
    assert owner_of("billing:eu", CLAIMS) == "billing"
    assert owner_of("anything", CLAIMS) == "system"
    assert owner_of("anything", {"billing": "billing"}) is None


def test_owns_agrees_with_owner_of_for_every_app() -> None:
    names = ["dispatch:team-a", "dispatch:team-a2", "dispatch:team-b", "dispatch:team-bz",
             "dispatch:x", "billing", "billing:1", "billingx", "default", "dispatch:"]
    for app in set(CLAIMS.values()):
        principal = who(app, Role.VIEWER)
        for name in names:
            assert owns(principal, name) == (owner_of(name, CLAIMS) == app), (app, name)


def test_claims_overlap_when_some_name_matches_both() -> None:
    assert claims_overlap("a*", "ab*") and claims_overlap("ab*", "a*")
    assert claims_overlap("a*", "abc") and claims_overlap("abc", "a*")
    assert claims_overlap("abc", "abc") and not claims_overlap("abc", "abd")
    assert not claims_overlap("ab*", "ac*") and not claims_overlap("ab*", "a")
    assert claims_overlap("*", "x")


def test_admin_may_do_everything() -> None:
    admin = who("nobody", Role.ADMIN)
    assert can_admin(admin) and can_read(admin, "billing") and can_write(admin, "x")
    assert can_work(admin, "any-group") and may_use_type(admin, "shell")


def test_operator_writes_and_viewer_reads_only_their_apps_namespaces() -> None:
    operator, viewer = who("billing", Role.OPERATOR), who("billing", Role.VIEWER)
    assert can_write(operator, "billing:eu") and can_read(operator, "billing")
    assert not can_write(operator, "dispatch:x") and not can_read(operator, "default")
    assert can_read(viewer, "billing:eu") and not can_write(viewer, "billing:eu")
    assert not any(can_admin(p) or can_work(p, "g") for p in (operator, viewer))


def test_a_carved_out_namespace_is_not_the_wider_claims_app() -> None:
    system = who("system", Role.OPERATOR)
    assert can_write(system, "dispatch:other")
    assert not can_read(system, "dispatch:team-a") and not can_read(system, "billing")
    assert can_write(who("team-a", Role.OPERATOR), "dispatch:team-a")


def test_worker_tokens_serve_their_groups_and_read_no_namespace() -> None:
    worker = who("billing", Role.WORKER, groups=("gpu", "etl-*"))
    assert can_work(worker, "gpu") and can_work(worker, "etl-nightly")
    assert not can_work(worker, "gpu2") and not can_work(worker, "default")
    assert not can_read(worker, "billing") and not can_write(worker, "billing")
    assert not can_work(who("billing", Role.OPERATOR), "gpu")


def test_code_running_job_types_need_a_grant() -> None:
    plain = who("billing", Role.OPERATOR)
    granted = Principal("billing", Role.OPERATOR, "cw_x", job_types=frozenset({"shell"}))
    assert may_use_type(plain, "http") and not may_use_type(plain, "shell")
    assert may_use_type(granted, "shell") and not may_use_type(granted, "python")


def test_a_principal_carries_its_tokens_and_apps_facts() -> None:
    record = TokenRecord("abcdefgh", "team-a", Role.OPERATOR, "h", 0)
    app = App("team-a", 0, Grants(frozenset({"sql"})), AppLimits(max_jobs=5),
              namespaces=("dispatch:team-a",))
    principal = principal_for(record, app, CLAIMS, "10.0.0.1")
    assert principal.token_prefix == "cw_abcdefgh" and principal.address == "10.0.0.1"
    assert principal.job_types == {"sql"} and principal.limits.max_jobs == 5
    assert principal.foreign == ()  # nothing more specific than its exact claim


@pytest.mark.parametrize(("name", "ok"), [
    ("billing", True), ("a", True), ("team-a.eu_1", True), ("", False), ("Billing", False),
    ("-x", False), ("a b", False), ("a" * 63, True), ("a" * 64, False), ("a/b", False),
])
def test_app_names(name: str, ok: bool) -> None:
    if ok:
        assert check_app_name(name) == name
    else:
        with pytest.raises(InvalidField) as caught:
            check_app_name(name)
        assert caught.value.field == "name"


@pytest.mark.parametrize(("claim", "ok"), [
    ("billing", True), ("dispatch:*", True), ("*", True), ("a*b", False), ("a**", False),
    ("", False), ("a b", False), ("x" * 255, True), ("x" * 256, False), ("x" * 255 + "*", True),
])
def test_claims(claim: str, ok: bool) -> None:
    if ok:
        assert check_claim(claim) == claim
    else:
        with pytest.raises(InvalidField):
            check_claim(claim)


def test_token_fields_are_checked_by_role() -> None:
    assert check_token_fields(Role.WORKER, ["b", "a", "a"], "", None, 10) == ("a", "b")
    assert check_token_fields(Role.VIEWER, [], "ci", 11, 10) == ()
    for role, groups, label, expires, field in (
        (Role.WORKER, [], "", None, "groups"), (Role.OPERATOR, ["g"], "", None, "groups"),
        (Role.VIEWER, [], "x" * 256, None, "label"), (Role.ADMIN, [], "", 10, "expires_at"),
        (Role.WORKER, ["a b"], "", None, "groups"),
    ):
        with pytest.raises(InvalidField) as caught:
            check_token_fields(role, groups, label, expires, 10)
        assert caught.value.field == field


def test_token_liveness() -> None:
    record = TokenRecord("abcdefgh", "a", Role.VIEWER, "h", 0, expires_at=100)
    assert record.live(99) and not record.live(100)
    assert not TokenRecord("abcdefgh", "a", Role.VIEWER, "h", 0, revoked_at=5).live(1)


def test_limits_and_grants_round_trip_through_json_and_refuse_nonsense() -> None:
    limits = AppLimits(max_jobs=10, submits_per_second=2.5)
    assert limits.to_json() == {"max_jobs": 10, "submits_per_second": 2.5}
    assert AppLimits.from_json(limits.to_json()) == limits
    grants = Grants(frozenset({"shell", "sql"}))
    assert Grants.from_json(grants.to_json()) == grants
    for bad, field in (({"max_jobs": 1.5}, "limits.max_jobs"), ({"max_jobs": 0}, "limits.max_jobs"),
                       ({"max_jobs": True}, "limits.max_jobs"), ({"nope": 1}, "limits.nope"),
                       ({"fires_per_second": math.nan}, "limits.fires_per_second"),
                       ({"max_batch": 2**64}, "limits.max_batch")):
        with pytest.raises(InvalidField) as caught:
            AppLimits.from_json(bad)
        assert caught.value.field == field
    with pytest.raises(InvalidField):
        Grants.from_json({"job_types": "shell"})
