"""Fair shares between namespaces: the rule the engine applies to its window, the
deliveries it holds and the attempts under way."""

from __future__ import annotations

from cronwheel.domain.fairshare import (
    by_priority_within,
    count_by,
    crowding,
    room_for,
    share,
    split,
)


def test_each_holder_gets_a_share_and_one_is_kept_for_a_newcomer() -> None:
    assert share(100, 1) == 50
    assert share(100, 3) == 25
    assert share(3, 5) == 1  # never nothing


def test_a_namespace_over_its_share_gets_no_room_while_a_newcomer_does() -> None:
    held = {"flood": 60}
    assert room_for("flood", held, 60, 100) == 0  # alone, its share is half
    assert room_for("quiet", held, 60, 100) == 33  # a third each with two holding
    assert room_for("quiet", {"flood": 60, "quiet": 10}, 70, 100) == 23


def test_room_never_goes_past_what_is_left_of_the_capacity() -> None:
    held = {"a": 30, "b": 30, "c": 30}
    assert room_for("d", held, 90, 100) == 10


def test_an_empty_engine_gives_half_its_capacity_to_the_first_namespace() -> None:
    assert room_for("a", {}, 0, 100) == 50


def test_crowding_names_only_those_over_their_share() -> None:
    assert crowding({"flood": 60, "quiet": 2}, 100) == {"flood"}  # share 33
    assert crowding({"a": 50}, 100) == frozenset()  # half is a lone holder's share
    assert crowding({"a": 51}, 100) == {"a"}
    assert crowding({}, 100) == frozenset()


def test_room_is_taken_by_priority_within_a_namespace_never_across() -> None:
    items = [("flood", 9, "f1"), ("quiet", 0, "q1"), ("flood", 7, "f2"), ("flood", 8, "f3"),
             ("quiet", 5, "q2")]
    rooms = {"flood": 2, "quiet": 5}
    taken, left = by_priority_within(items, lambda i: i[0], lambda i: i[1], rooms.__getitem__)
    assert [i[2] for i in taken] == ["f1", "f3", "q1", "q2"]  # the quiet one's room is its own
    assert [i[2] for i in left] == ["f2"]


def test_a_namespace_within_its_room_keeps_its_order_unsorted() -> None:
    items = [("a", 1, "x"), ("a", 9, "y")]
    taken, left = by_priority_within(items, lambda i: i[0], lambda i: i[1], lambda _ns: 5)
    assert [i[2] for i in taken] == ["x", "y"] and left == []


def test_counts_per_namespace() -> None:
    assert count_by(["a", "b", "a"], lambda s: s) == {"a": 2, "b": 1}


def test_a_split_gives_the_small_wants_all_and_the_rest_to_the_large() -> None:
    assert split(100, {"flood": 5_000, "quiet": 3}) == {"quiet": 3, "flood": 97}
    assert split(100, {"a": 5_000, "b": 5_000}) == {"a": 50, "b": 50}
    assert split(10, {"a": 4, "b": 40, "c": 40}) == {"a": 3, "b": 3, "c": 4}
    assert split(1, {"a": 9, "b": 9}) == {"a": 1, "b": 1}  # never nothing
