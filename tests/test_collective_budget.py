"""The collective budget shared through the memory store: the sliding window itself (both
stores), and two persona runtimes — two hub nodes' worth — held to one budget by one Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from collective_util import Watcher, bot_card, collective, config, driver, guards, open_thread, watcher

from clients.sdk import Client
from personas.collective.policy import Incoming, Policy, Utterance, View
from personas.memory import InMemoryStore, MemoryStore
from personas.redis_store import RedisStore

__all__ = ["collective", "driver", "watcher"]  # fixtures, used by name


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemoryStore]:
    made: MemoryStore = RedisStore(request.getfixturevalue("redis_url")) if request.param == "redis" \
        else InMemoryStore()
    yield made
    await made.close()


async def test_the_window_counts_up_to_its_limit(store: MemoryStore) -> None:
    assert [await store.collective_take(f"t{n}", 3, 60.0) for n in range(3)] == [(0, 0.0), (1, 0.0), (2, 0.0)]
    used, wait = await store.collective_take("t3", 3, 60.0)
    assert used == 3 and 0 < wait <= 60.0  # until the oldest turn leaves the window
    used, wait = await store.collective_take("chatter", 2, 60.0)  # a smaller share is full sooner
    assert used == 3 and 0 < wait <= 60.0
    await store.collective_give_back("t1")
    assert await store.collective_take("t4", 3, 60.0) == (2, 0.0)
    assert (await store.collective_take("t5", 3, 60.0))[0] == 3


async def test_a_short_window_frees_its_places(store: MemoryStore) -> None:
    assert await store.collective_take("a", 1, 0.05) == (0, 0.0)
    used, wait = await store.collective_take("b", 1, 0.05)
    assert used == 1 and 0 < wait <= 0.05
    await asyncio.sleep(wait + 0.02)  # the refusal said when: then there is room
    assert (await store.collective_take("c", 1, 0.05))[1] == 0.0


@pytest.fixture
async def redis_stores(redis_url: str) -> AsyncIterator[Callable[[], RedisStore]]:
    """Stores on the test's Redis, closed after the personas using them have stopped."""
    made: list[RedisStore] = []

    def make() -> RedisStore:
        made.append(RedisStore(redis_url))
        return made[-1]

    yield make
    for store in made:
        await store.close()


class AlwaysNew(Policy):
    """Always answers, never repeating itself: only the budget holds these."""

    counter = itertools.count()

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        n = "".join(chr(ord("a") + int(d)) for d in str(next(self.counter)))
        return Utterance(f"Point {n}: quartz{n} basalt{n} granite{n}.", "answer")


async def test_two_runtimes_on_one_redis_share_one_budget(redis_stores: Callable[[], RedisStore],
                                                          collective: Any, driver: Client,
                                                          watcher: Watcher) -> None:
    conf = config(guards(budget_turns=3, budget_window=60.0))
    runtimes = []
    for name in ("north", "south"):  # each on its own store connection, as on its own node
        card = bot_card(f"bot-{name}", name.title())
        runtimes.append(await collective([card], conf, policies={card.id: AlwaysNew()},
                                         store=redis_stores()))
    for i in range(6):
        await open_thread(driver, f"t-shared-{i}")
    await watcher.wait_for(lambda _: sum(m["from"]["id"] != "driver" for m in watcher.turns) >= 3)
    await watcher.quiet()
    # Each runtime's own budget would let 3 through, 6 in all: the shared one lets 3.
    assert sum(m["from"]["id"] != "driver" for m in watcher.turns) == 3
    statuses = [r.collective_status() or {} for r in runtimes]
    assert sum(s["admitted"] for s in statuses) == 3
    assert sum(s["refused"].get("budget", 0) for s in statuses) >= 3
    notes = watcher.notes()
    # At most one budget note per runtime and window.
    assert 1 <= len(notes) <= 2 and {n["meta"]["guard"] for n in notes} == {"budget"}
