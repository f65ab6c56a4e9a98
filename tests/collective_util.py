"""Helpers for the collective tests against a real hub (imported like `persona_util.py`)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import pytest
from conftest import HubServer

from clients.sdk import Client
from personas.card import Card, parse_card
from personas.catalog import builtin_cards
from personas.collective import Backchannel, CollectiveConfig, Commons, GuardConfig
from personas.collective.meter import Meter
from personas.collective.policy import Policy
from personas.memory import InMemoryStore, MemoryStore
from personas.minds import make_mind
from personas.runtime import Runtime, run_workers
from personas.worker import PersonaWorker

FAST = (0.02, 0.2)
# Wide open unless a test narrows one: each guard test breaks exactly one bound.
LOOSE = GuardConfig(max_turns=1000, max_duration=600.0, cooldown=0.0, rate_turns=1000, rate_window=60.0,
                    budget_turns=1000, budget_window=60.0)


def config(guards: GuardConfig = LOOSE, **overrides: Any) -> CollectiveConfig:
    """A quick, seeded collective: no thinking pause, nothing by chance unless asked for."""
    base = CollectiveConfig(guards=guards, seed=7, think=(0.0, 0.0), greet=False, greet_delay=(0.0, 0.0),
                            reflect=False, consult_wait=3.0, answer_patience=0.0, sweep_every=0.1,
                            welcome_chance=1.0, reply_chance=1.0)
    return dataclasses.replace(base, **overrides)


def guards(**overrides: Any) -> GuardConfig:
    return dataclasses.replace(LOOSE, **overrides)


def bot_card(card_id: str, name: str, interests: Iterable[str] = ("chess",)) -> Card:
    return parse_card({"id": card_id, "name": name, "greeting": "Hello.", "interests": list(interests),
                       "voice": {"openers": ["Hm."]}}, f"{card_id}.toml")


def builtin(*ids: str) -> list[Card]:
    """Built-in cards, in the order asked for."""
    cards = {c.id: c for c in builtin_cards()}
    return [cards[i] for i in ids]


class Watcher:
    """An observer watching `collective:*`: every collective msg, in arrival order."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.msgs: list[dict[str, Any]] = []
        self.rooms: set[str] = {"collective:all"}
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.client:
            if event.get("t") == "msg":
                self.msgs.append(event)
                self.rooms.add(event["room"])
                self._arrived.set()

    @property
    def turns(self) -> list[dict[str, Any]]:
        """Every msg but guard notes (which are no turns)."""
        return [m for m in self.msgs if not is_note(m)]

    def thread(self, thread: str) -> list[dict[str, Any]]:
        """The thread's turns (its guard notes: `notes`)."""
        return [m for m in self.turns if (m.get("meta") or {}).get("thread") == thread]

    def by(self, sender: str) -> list[dict[str, Any]]:
        return [m for m in self.turns if m["from"]["id"] == sender]

    def notes(self, thread: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.msgs if is_note(m) and thread in (None, m["meta"].get("thread"))]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.msgs if (m.get("meta") or {}).get("kind") == kind]

    async def wait_for(self, check: Callable[[list[dict[str, Any]]], bool], limit: float = 5.0) -> None:
        async with asyncio.timeout(limit):
            while True:
                self._arrived.clear()
                if check(self.msgs):
                    return
                await self._arrived.wait()

    async def quiet(self, gap: float = 0.6, limit: float = 8.0) -> None:
        """Wait until no msg arrived for `gap` seconds (the collective went silent)."""
        async with asyncio.timeout(limit):
            while True:
                seen = len(self.msgs)
                await asyncio.sleep(gap)
                if len(self.msgs) == seen:
                    return

    async def everything(self, extra_rooms: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Live msgs plus the stored history of every collective room seen or named."""
        found = list(self.msgs)
        for room in sorted(self.rooms | set(extra_rooms)):
            try:
                found += await self.client.history(room, limit=100)
            except Exception as exc:  # a room that never existed: nothing stored there
                assert "not_found" in str(exc) or "forbidden" in str(exc), exc
        return found

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def is_note(msg: Mapping[str, Any]) -> bool:
    return (msg.get("meta") or {}).get("kind") == "guard"


def dump(msgs: Iterable[Mapping[str, Any]]) -> str:
    """Every byte an observer could read of these msgs (text, meta, room) as one string."""
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in msgs).lower()


@pytest.fixture
async def watcher(hub: HubServer) -> AsyncIterator[Watcher]:
    client = Client(hub.url, hub.token("observer", "dash", "Dashboard"), backoff=FAST)
    await client.connect()
    await client.watch("collective:*")
    watching = Watcher(client)
    yield watching
    await watching.close()
    await client.close()


@pytest.fixture
async def driver(hub: HubServer) -> AsyncIterator[Client]:
    """A hand-driven persona connection ("driver") that opens threads on purpose."""
    client = Client(hub.url, hub.token("persona", "driver", "Driver"), backoff=FAST)
    await client.connect()
    drain = asyncio.create_task(_drain(client))  # a client must read its events (see the SDK)
    yield client
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    await client.close()


async def _drain(client: Client) -> None:
    async for _ in client:
        pass


@pytest.fixture
async def collective(hub: HubServer) -> AsyncIterator[Callable[..., Any]]:
    """Start personas in the collective: `await collective(cards, config, policies={id: P})`."""
    runtimes: list[Runtime] = []

    async def start(cards: list[Card], conf: CollectiveConfig, *,
                    policies: Mapping[str, Policy] | None = None, minds: Mapping[str, object] | None = None,
                    store: MemoryStore | None = None, meter: Meter | None = None) -> Runtime:
        from server.auth import mint

        store = store if store is not None else InMemoryStore()  # an empty store is falsy
        commons = Commons(conf, cards, meter=meter)
        workers = []
        for card in cards:
            token = mint(hub.settings.secret, sub=card.id, role="persona", name=card.name, ttl=3600)
            mind = make_mind(card)
            channel = Backchannel(card, commons, store, mind=(minds or {}).get(card.id, mind),
                                  policy=(policies or {}).get(card.id))
            workers.append(PersonaWorker(card, hub.url, token, mind=mind, store=store, collective=channel))
        runtime = await run_workers(workers, store, 10.0)
        runtime.commons = commons
        runtimes.append(runtime)
        return runtime

    yield start
    for runtime in runtimes:
        await runtime.stop()


async def open_thread(driver: Client, thread: str, text: str = "Let us talk about chess openings.",
                      room: str = "collective:all") -> int:
    ack = await driver.send(room, text, meta={"thread": thread, "kind": "other"})
    return int(ack["seq"])
