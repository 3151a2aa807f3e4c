"""Worker ids: random, naming their token, usable only by that token or an admin."""

from __future__ import annotations

import pytest

from cronwheel.domain.access import Principal, Role
from cronwheel.domain.errors import Forbidden
from cronwheel.domain.worker_ids import may_act_for, new_worker_id, registered_by


def caller(role: Role, prefix: str = "cw_abcdefgh") -> Principal:
    return Principal("team", role, prefix, groups=("etl",) if role is Role.WORKER else ())


def test_an_id_is_128_random_bits_after_the_registering_token_id() -> None:
    ids = {new_worker_id(caller(Role.WORKER)) for _ in range(1_000)}
    assert len(ids) == 1_000
    for worker_id in ids:
        prefix, token_id, random = worker_id.split("_")
        assert (prefix, token_id, len(random)) == ("w", "abcdefgh", 32)
        assert registered_by(worker_id) == "abcdefgh"
    bits = [int(i.split("_")[2], 16) for i in sorted(ids)]
    assert len({b >> 64 for b in bits}) == 1_000  # no shared high half: not a counter


def test_only_the_registering_token_or_an_admin_acts_for_a_worker() -> None:
    worker_id = new_worker_id(caller(Role.WORKER))
    assert may_act_for(caller(Role.WORKER), worker_id)
    assert not may_act_for(caller(Role.WORKER, "cw_zzzzzzzz"), worker_id)
    assert may_act_for(caller(Role.ADMIN, "cw_zzzzzzzz"), worker_id)
    for role in (Role.OPERATOR, Role.VIEWER):
        assert not may_act_for(caller(role), worker_id)  # even with the token's own id


@pytest.mark.parametrize("worker_id", [
    "", "nobody", "0192f1c4-7d1e-7c3a-9f00-000000000000",  # an id of the old kind
    "w_abcdefgh_" + "0" * 31, "w_abcdefgh_" + "G" * 32, "w_ABCDEFGH_" + "0" * 32,
])
def test_an_id_the_server_did_not_issue_is_nobodys(worker_id: str) -> None:
    assert registered_by(worker_id) is None
    assert not may_act_for(caller(Role.WORKER), worker_id)


def test_a_principal_without_a_token_id_neither_registers_nor_acts() -> None:
    anonymous = caller(Role.WORKER, "")  # e.g. a dialect's admitted client
    with pytest.raises(Forbidden):
        new_worker_id(anonymous)
    assert not may_act_for(anonymous, "nobody")
