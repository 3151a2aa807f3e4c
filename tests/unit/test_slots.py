"""The dispatcher's slots (engine/slots.py). A receiver's, shared between namespaces: who
gets a freed slot, and that a delivery cancelled while waiting never keeps one. The plain
ones: a free slot is taken at once, waiters are served in order, and a cancelled waiter
neither takes nor loses a slot."""

from __future__ import annotations

import asyncio

from cronwheel.engine.slots import FairSlots, Slots


async def holder(slots: FairSlots, namespace: str, order: list[str],
                 done: asyncio.Event) -> None:
    async with slots.hold(namespace):
        order.append(namespace)
        await done.wait()


async def test_a_freed_slot_goes_to_the_waiting_namespace_holding_the_fewest() -> None:
    slots = FairSlots(2)
    order: list[str] = []
    gates = [asyncio.Event() for _ in range(5)]
    names = ["flood", "flood", "flood", "flood", "quiet"]  # the quiet one comes last
    tasks = []
    for namespace, gate in zip(names, gates, strict=True):
        tasks.append(asyncio.create_task(holder(slots, namespace, order, gate)))
        await asyncio.sleep(0)
    for gate in gates:  # free one slot at a time
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["flood", "flood", "quiet", "flood", "flood"]


async def test_a_waiter_cancelled_gives_its_slot_back() -> None:
    slots = FairSlots(1)
    order: list[str] = []
    first, second = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(holder(slots, "a", order, first))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(holder(slots, "b", order, second))
    await asyncio.sleep(0)
    first.set()  # the slot is handed to b's waiter...
    waiting.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(held, waiting, return_exceptions=True)
    second.set()
    await asyncio.wait_for(holder(slots, "c", order, second), 1)  # the slot is free again
    assert order == ["a", "c"]


async def test_free_slots_are_taken_without_waiting_and_then_refused() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take()
    slots.release()
    assert slots.try_take()


async def test_waiters_get_released_slots_first_come_first_served() -> None:
    slots = Slots(1)
    assert slots.try_take()
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.take()
        order.append(n)

    waiting = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    slots.release()
    assert not slots.try_take()  # handed to the first waiter, not left free
    for _ in range(3):
        await asyncio.sleep(0)
        slots.release()
    await asyncio.gather(*waiting)
    assert order == [0, 1, 2]
    assert slots.try_take() and not slots.try_take()  # one slot, as at the start


async def test_a_cancelled_waiter_leaves_its_place_and_passes_on_a_slot_handed_to_it() -> None:
    slots = Slots(1)
    assert slots.try_take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.release()  # handed to `first` ...
    first.cancel()  # ... which is cancelled before it runs: the slot goes on to `second`
    await asyncio.gather(first, return_exceptions=True)
    await second
    assert not slots.try_take()
    third = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    third.cancel()  # cancelled while waiting: the next release finds the slot free
    await asyncio.gather(third, return_exceptions=True)
    slots.release()
    assert slots.try_take()
