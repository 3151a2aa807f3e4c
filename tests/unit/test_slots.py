"""A receiver's slots shared between namespaces: who gets a freed slot, and that a delivery
cancelled while waiting never keeps one."""

from __future__ import annotations

import asyncio

from cronwheel.engine.slots import FairSlots


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
