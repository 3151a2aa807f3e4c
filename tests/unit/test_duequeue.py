"""The in-memory store's due queue: earliest first, changed keys honoured, stale entries dropped."""

from __future__ import annotations

from cronwheel.store.duequeue import DueQueue


def everyone(_item: str) -> bool:
    return True


def test_takes_the_earliest_due_within_the_limit_and_keeps_them_queued() -> None:
    queue = DueQueue()
    for item, at in [("c", 30), ("a", 10), ("late", 99), ("b", 20)]:
        queue.set(item, (at,))
    assert queue.take(2, 50, everyone) == ["a", "b"]
    assert queue.take(10, 50, everyone) == ["a", "b", "c"]  # taking does not dequeue
    assert queue.take(10, 5, everyone) == []


def test_ineligible_items_are_passed_over_not_lost() -> None:
    queue = DueQueue()
    for item, at in [("held", 1), ("free", 2)]:
        queue.set(item, (at,))
    assert queue.take(1, 10, lambda item: item != "held") == ["free"]
    assert queue.take(5, 10, everyone) == ["held", "free"]


def test_a_new_key_moves_an_item_and_none_removes_it() -> None:
    queue = DueQueue()
    queue.set("x", (5,))
    queue.set("y", (6,))
    queue.set("x", (50,))
    queue.set("y", None)
    assert queue.take(10, 10, everyone) == []
    assert queue.take(10, 50, everyone) == ["x"]
    assert len(queue) == 1


def test_an_item_set_back_to_an_old_key_comes_out_once() -> None:
    queue = DueQueue()
    queue.set("x", (5,))
    queue.set("x", (7,))
    queue.set("x", (5,))  # the first entry is valid again, next to its twin
    assert queue.take(10, 10, everyone) == ["x"]


def test_many_changes_keep_the_queue_right_as_it_compacts() -> None:
    queue = DueQueue()
    for round_ in range(200):
        for item in ("p", "q", "r"):
            queue.set(item, (round_ + ord(item),))
    assert queue.take(10, 10_000, everyone) == ["p", "q", "r"]
    assert queue.take(10, 199 + ord("p"), everyone) == ["p"]
