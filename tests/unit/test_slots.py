"""The dispatcher's counting semaphore (engine/slots.py): a free slot is taken at once,
waiters are served in order, and a cancelled waiter neither takes nor loses a slot."""

from __future__ import annotations

import asyncio

from cronwheel.engine.slots import Slots


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
