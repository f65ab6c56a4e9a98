"""The Redis engine's pure parts, without Redis: the admission gate (redis_gate.py) and
which dm rooms a reconnect recovers (redis_inbox.py). Every wait is bounded."""

from __future__ import annotations

import asyncio

import pytest

from server import keys
from server.engine.redis_gate import Gate
from server.engine.redis_inbox import MARGIN_MS, InboxClock, missed

# ---- the gate ------------------------------------------------------------------------------


async def test_calls_beyond_the_slots_wait_their_turn_in_order() -> None:
    gate = Gate(slots=2, wait=5.0)
    await gate.acquire()
    await gate.acquire()
    order: list[int] = []

    async def queued(i: int) -> None:
        await gate.acquire()
        order.append(i)

    waiting = [asyncio.create_task(queued(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert gate.queued == 3 and order == []
    for _ in range(3):
        gate.release()
    async with asyncio.timeout(1):
        await asyncio.gather(*waiting)
    assert order == [0, 1, 2]


async def test_a_wait_past_its_bound_is_unavailable_and_gives_up_its_place() -> None:
    gate = Gate(slots=1, wait=0.05)
    await gate.acquire()
    with pytest.raises(ConnectionError, match="busy"):
        await gate.acquire()
    assert gate.queued == 0
    gate.release()
    await gate.acquire()  # the slot was not lost


async def test_a_failure_fails_the_queue_at_once_and_stops_queueing_until_a_success() -> None:
    gate = Gate(slots=1, wait=60.0)
    await gate.acquire()
    waiting = [asyncio.create_task(gate.acquire()) for _ in range(5)]
    await asyncio.sleep(0)
    gate.failed()
    async with asyncio.timeout(1):  # not after the 60 s wait
        results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError, match="unreachable"):
        await gate.acquire()  # no free slot: fails without waiting
    gate.release()
    await gate.acquire()  # a free slot: this call may find out Redis is back
    gate.succeeded()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert gate.queued == 1  # queueing again
    gate.release()
    async with asyncio.timeout(1):
        await waiter


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    gate = Gate(slots=1, wait=60.0)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # handed to the waiter...
    waiter.cancel()  # ...which is cancelled in the same tick: the slot must come back
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with asyncio.timeout(1):
        await gate.acquire()


# ---- which dm rooms a reconnect recovers ---------------------------------------------------


def test_missed_takes_untracked_rooms_from_their_lowest_logged_seq() -> None:
    entries = [("dm:sam:bob", 4), ("dm:sam:ann", 7), ("dm:sam:bob", 5), ("dm:sam:bob", 3)]
    assert missed(entries, {"dm:sam:ann": 6}) == {"dm:sam:bob": 2}


def test_no_window_before_a_session_was_ever_up() -> None:
    clock = InboxClock()
    clock.want("sam")
    clock.subscribed("sam", 1_000)
    assert clock.windows() == {}


def test_windows_start_at_the_subscription_or_shortly_before_the_loss() -> None:
    clock = InboxClock()
    clock.want("early")
    clock.want("late")
    clock.want("pending")  # its subscribe failed: no time known
    clock.subscribed("early", 1_000)
    clock.up(at_ms=2_000, now=100.0)  # confirms "late" and "pending" at 2_000
    clock.subscribed("late", 9_000)  # ignored: known already
    clock.alive(160.0)  # a minute later, the last reply from Redis
    clock.down()
    lost = 2_000 + 60_000
    assert clock.lost_ms == lost
    assert clock.windows() == {u: lost - MARGIN_MS for u in ("early", "late", "pending")}

    clock.up(at_ms=lost + 1_000, now=200.0)
    clock.want("new")  # subscribed during the next session, just before it was lost
    clock.subscribed("new", lost + 1_500)
    clock.alive(201.0)
    clock.down()
    windows = clock.windows()
    assert windows["new"] == lost + 1_500  # nothing before its subscription is replayed
    assert windows["early"] == lost + 2_000 - MARGIN_MS


def test_a_session_that_never_came_up_keeps_the_earlier_loss() -> None:
    clock = InboxClock()
    clock.want("sam")
    clock.up(at_ms=5_000, now=0.0)
    clock.alive(1.0)
    clock.down()
    clock.down()  # a reconnect that failed before its recovery
    assert clock.lost_ms == 6_000
    clock.drop("sam")
    assert clock.windows() == {}


def test_the_inbox_logs_of_a_room() -> None:
    assert keys.dm_sides("dm:samantha:alice") == ["samantha", "alice"]
    assert keys.dm_sides("dm:sam:sam") == ["sam"]
    assert keys.dm_sides("group:g") == []
    assert keys.inbox("alice") == "os1:inbox:{user:alice}"
