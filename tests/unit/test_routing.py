"""Choosing workers for a run (cronwheel.domain.routing)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.routing import Candidate, choose
from cronwheel.domain.worker_target import Route


def workers(*names: str, busy: dict[str, int] | None = None) -> list[Candidate]:
    busy = busy or {}
    return [Candidate(f"id-{n}", n, busy.get(n, 0), 4, "127.0.0.1") for n in names]


def names(picked: list[Candidate]) -> list[str]:
    return [c.name for c in picked]


def test_nobody_to_choose_from_gives_nobody() -> None:
    for route in Route:
        assert choose(route, [], "job", 0, 0.5) == []


def test_round_robin_takes_each_worker_in_turn_by_name() -> None:
    pool = workers("w2", "w1", "w3")
    picked = [names(choose(Route.ROUND_ROBIN, pool, "job", turn, 0.0)) for turn in range(6)]
    assert picked == [["w1"], ["w2"], ["w3"], ["w1"], ["w2"], ["w3"]]


def test_random_follows_the_draw_over_the_whole_range() -> None:
    pool = workers("a", "b", "c", "d")
    picked = Counter(names(choose(Route.RANDOM, pool, "job", 0, i / 100))[0] for i in range(100))
    assert picked == {"a": 25, "b": 25, "c": 25, "d": 25}
    assert names(choose(Route.RANDOM, pool, "job", 0, 0.999999)) == ["d"]


def test_least_busy_weighs_load_by_capacity() -> None:
    pool = [Candidate("1", "small", 1, 1), Candidate("2", "big", 3, 8)]
    assert names(choose(Route.LEAST_BUSY, pool, "job", 0, 0.0)) == ["big"]
    idle = workers("a", "b", "c", busy={"a": 2, "b": 0, "c": 1})
    assert names(choose(Route.LEAST_BUSY, idle, "job", 0, 0.0)) == ["b"]


def test_failover_takes_the_first_healthy_worker_and_the_next_when_it_goes() -> None:
    assert names(choose(Route.FAILOVER, workers("b", "a", "c"), "job", 5, 0.7)) == ["a"]
    assert names(choose(Route.FAILOVER, workers("b", "c"), "job", 5, 0.7)) == ["b"]


def test_broadcast_takes_everyone() -> None:
    assert names(choose(Route.BROADCAST, workers("b", "a", "c"), "job", 0, 0.0)) == [
        "a", "b", "c"]


def test_consistent_hash_keeps_a_key_on_its_worker() -> None:
    pool = workers("w1", "w2", "w3", "w4")
    for key in ("orders", "billing", "reports"):
        first = names(choose(Route.CONSISTENT_HASH, pool, key, 0, 0.1))
        assert all(names(choose(Route.CONSISTENT_HASH, pool, key, t, t / 10)) == first
                   for t in range(5))


@given(st.lists(st.text(min_size=1, max_size=8), min_size=200, max_size=200, unique=True))
def test_consistent_hash_moves_only_the_keys_of_a_leaving_worker(keys: list[str]) -> None:
    pool = workers("w1", "w2", "w3", "w4", "w5")
    before = {k: names(choose(Route.CONSISTENT_HASH, pool, k, 0, 0.0))[0] for k in keys}
    smaller = [c for c in pool if c.name != "w3"]
    after = {k: names(choose(Route.CONSISTENT_HASH, smaller, k, 0, 0.0))[0] for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "w3"}
    assert len(set(before.values())) == 5  # 200 keys spread over every worker
