"""Helpers for the persona tests against a real hub (imported like `sdk_util.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import HubServer

from clients.sdk import Client
from personas.catalog import builtin_cards, find
from personas.memory import InMemoryStore
from personas.runtime import Runtime, start_embedded

FAST = (0.02, 0.2)


@dataclass
class Reply:
    msg: dict[str, Any]
    deltas: list[str] = field(default_factory=list)
    typing: bool = False

    @property
    def text(self) -> str:
        return str(self.msg["text"])


class Person:
    """A human chatting with a persona over the SDK."""

    def __init__(self, client: Client, persona: str) -> None:
        self.client, self.persona = client, persona
        self.room = f"dm:{persona}:{(client.me or {})['id']}"

    async def say(self, text: str) -> int:
        ack = await self.client.send(self.room, text)
        return int(ack["seq"])

    async def reply_to(self, seq: int, limit: float = 10.0) -> Reply:
        """The persona's reply to message `seq`, with the deltas and typing seen before it."""
        deltas: dict[str, list[str]] = {}
        typing = False
        async with asyncio.timeout(limit):
            while True:
                event = await self.client.next_event()
                if event.get("room") != self.room or (event.get("from") or {}).get("id") != self.persona:
                    continue
                if event["t"] == "typing":
                    typing = True
                elif event["t"] == "delta":
                    deltas.setdefault(event["stream"], []).append(event["text"])
                elif event["t"] == "msg" and event.get("reply_to") == seq:
                    return Reply(event, deltas.get(event.get("stream", ""), []), typing)

    async def ask(self, text: str, limit: float = 10.0) -> Reply:
        return await self.reply_to(await self.say(text), limit)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
async def personas(hub: HubServer, store: InMemoryStore) -> AsyncIterator[Callable[..., Any]]:
    """Start persona runtimes (`await personas("samantha")`); all stopped at the end."""
    runtimes: list[Runtime] = []

    async def start(*ids: str, **options: Any) -> Runtime:
        cards = [c for c in builtin_cards() if not ids or c.id in ids]
        options.setdefault("store", store)
        runtime = await start_embedded(hub.url, hub.settings.secret, cards, **options)
        runtimes.append(runtime)
        return runtime

    yield start
    for runtime in runtimes:
        await runtime.stop()


@pytest.fixture
async def people(hub: HubServer) -> AsyncIterator[Callable[..., Any]]:
    """Humans: `await people("alice", persona="samantha")`; closed at the end."""
    opened: list[Client] = []

    async def open_person(sub: str, persona: str = "samantha", name: str | None = None) -> Person:
        client = Client(hub.url, hub.token("human", sub, name), backoff=FAST)
        await client.connect()
        opened.append(client)
        return Person(client, persona)

    yield open_person
    await asyncio.gather(*(c.close() for c in opened))


def card(card_id: str) -> Any:
    found = find(builtin_cards(), card_id)
    assert found is not None
    return found


async def eventually(check: Callable[[], Any], limit: float = 3.0) -> None:
    """Wait until the async `check()` returns true (the store is written just after a reply)."""
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)
