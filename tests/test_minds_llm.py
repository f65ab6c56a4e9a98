"""The openai and local minds against a real OpenAI-compatible server (llama.cpp in-process):
streaming, determinism, timeouts, a dead or silent endpoint, retries, the concurrency limit,
and a persona answering a person through the hub. No mocked LLM."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import HubServer, make_settings
from llm_util import brief_card, collect, free_port, mind_input, samantha, smollm2, tiny_llm
from persona_util import FAST, Person

from clients.sdk import Client
from personas.memory import InMemoryStore
from personas.minds import local
from personas.minds.base import Mind
from personas.minds.local import LocalMind, LocalServer
from personas.minds.openai_mind import Endpoint, Limits, OpenAIMind
from personas.minds.prompt import CUT_OFF, trouble_line
from personas.runtime import start_embedded
from server.serve import load_personas

__all__ = ["smollm2", "tiny_llm"]  # fixtures, used by name

# Plumbing runs on the tiny model, whose byte tokens make prompts four times longer.
TINY = Limits(timeout=10, context_tokens=4096)


Minds = Callable[..., OpenAIMind]


@pytest.fixture
async def minds() -> AsyncIterator[Minds]:
    """Make minds (`minds(endpoint, **options)`); every one is closed at the end."""
    made: list[Mind] = []

    def make(endpoint: Endpoint, **options: Any) -> OpenAIMind:
        mind = OpenAIMind(endpoint, **options)
        made.append(mind)
        return mind

    yield make
    for mind in made:
        await mind.aclose()


async def test_a_reply_streams_in_several_chunks(tiny_llm: LocalServer, minds: Minds) -> None:
    mind = minds(tiny_llm.endpoint, temperature=0, max_tokens=32, limits=TINY)
    chunks = await collect(mind, mind_input("Hi! I'm Ana and I love jazz."))
    assert len(chunks) >= 8  # llama.cpp streams about a token per chunk
    assert all(chunks) and len("".join(chunks)) >= 16
    assert mind.stats == {"replies": 1, "failures": 0, "retries": 0}


async def test_temperature_zero_gives_the_same_text_twice(tiny_llm: LocalServer, smollm2: LocalServer,
                                                          minds: Minds) -> None:
    tiny = minds(tiny_llm.endpoint, temperature=0, max_tokens=32, limits=TINY)
    inp = mind_input("Tell me about the stars.")
    first, second = "".join(await collect(tiny, inp)), "".join(await collect(tiny, inp))
    assert first == second and len(first) >= 16
    # SmolLM2 too, once llama.cpp has the prompt cached: a fresh evaluation of the prompt
    # rounds differently from a cached one (batch shapes), so the very first reply may part
    # ways with the rest after a dozen tokens — the server's doing, not sampling.
    mind = minds(smollm2.endpoint, temperature=0, max_tokens=24, limits=Limits(context_tokens=1024))
    inp = mind_input("Tell me about the stars.", card=brief_card())
    replies = ["".join(await collect(mind, inp)) for _ in range(3)]
    assert replies[1] == replies[2] and replies[1].strip()


async def test_smollm2_answers_in_words(smollm2: LocalServer, minds: Minds) -> None:
    mind = minds(smollm2.endpoint, temperature=0, max_tokens=48, frequency_penalty=0.5,
                 limits=Limits(context_tokens=1024))
    inp = mind_input("Hi Samantha! I love jazz and I live in Lisbon. What should I listen to tonight?")
    began = first = time.perf_counter()
    chunks: list[str] = []
    async for chunk in mind.reply(inp):
        first = first if chunks else time.perf_counter()
        chunks.append(chunk)
    end = time.perf_counter()
    text = "".join(chunks)
    rate = (len(chunks) - 1) / max(end - first, 1e-6)  # llama.cpp streams a token per chunk
    print(f"\nSmolLM2: first text after {first - began:.2f} s (the prompt read), "
          f"then ~{rate:.0f} tokens/s: {text!r}")
    assert mind.failures == 0 and text != trouble_line(inp.card, "Ana")
    words = text.split()
    assert len(words) >= 5 and sum(w.isascii() for w in words) >= 0.8 * len(words)


async def test_a_dead_endpoint_never_hangs(minds: Minds) -> None:
    mind = minds(Endpoint(f"http://127.0.0.1:{free_port()}/v1", "m"), limits=Limits(timeout=2, backoff=0.05))
    began = time.perf_counter()
    chunks = await collect(mind, mind_input("hello?", name="Ana"))
    assert chunks == [trouble_line(samantha(), "Ana", 10)]
    assert time.perf_counter() - began < 2.0 and mind.failures == 1


async def test_a_silent_endpoint_times_out_and_the_waiting_reply_too(minds: Minds) -> None:
    """A server that accepts and never answers: both replies (one waiting for the other's
    slot under a limit of 1) end with the apology within the budget."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mind = minds(Endpoint(f"http://127.0.0.1:{port}/v1", "m"), limits=Limits(timeout=0.5, concurrency=1))
    began = time.perf_counter()
    try:
        replies = await asyncio.gather(collect(mind, mind_input("one", name="Ana")),
                                       collect(mind, mind_input("two", name="Ana")))
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert time.perf_counter() - began < 1.5
    assert all(reply == [trouble_line(samantha(), "Ana", 10)] for reply in replies)
    assert mind.failures == 2 and mind.peak_in_flight == 1
    assert "timed out" in mind.last_error or "no turn" in mind.last_error


async def test_a_timeout_mid_stream_keeps_the_text_and_trails_off(smollm2: LocalServer, minds: Minds) -> None:
    inp = mind_input("Tell me a very long story about the sea.", name="Ana", card=brief_card())
    warm = minds(smollm2.endpoint, temperature=0, max_tokens=4, limits=Limits(context_tokens=1024))
    await collect(warm, inp)  # the prompt is cached now: the long reply's first token comes at once
    mind = minds(smollm2.endpoint, temperature=0.7, max_tokens=1000,
                 limits=Limits(timeout=1.5, context_tokens=1024))
    began = time.perf_counter()
    chunks = await collect(mind, inp)
    assert time.perf_counter() - began < 1.5 + 1.0  # the budget, and closing the stream
    assert len(chunks) > 2 and chunks[-1] == CUT_OFF  # what was streamed stands, then trails off
    assert mind.failures == 1 and "mid-stream" in mind.last_error
    # The abandoned stream was closed, so its generation stopped and the server is still usable.
    assert "".join(await collect(warm, inp)).strip() and warm.failures == 0


@pytest.mark.parametrize("limit", [1, 2])
async def test_the_concurrency_limit_holds(tiny_llm: LocalServer, minds: Minds,
                                           limit: int) -> None:
    mind = minds(tiny_llm.endpoint, temperature=0, max_tokens=48,
                 limits=Limits(timeout=10, concurrency=limit, context_tokens=4096))
    spans: list[tuple[float, float]] = []

    async def one(text: str) -> None:
        start = None
        async for _ in mind.reply(mind_input(text)):
            start = start or time.perf_counter()
        assert start is not None
        spans.append((start, time.perf_counter()))

    await asyncio.gather(*(one(f"message {i}") for i in range(4)))
    assert mind.peak_in_flight == limit and mind.replies == 4
    if limit == 1:
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


async def test_retries_until_a_late_server_is_up(tiny_llm: LocalServer, minds: Minds) -> None:
    port = free_port()
    late = LocalServer(tiny_llm.model, alias="tiny", port=port, n_ctx=8192)
    mind = minds(Endpoint(f"http://127.0.0.1:{port}/v1", "tiny"), temperature=0, max_tokens=16,
                 limits=Limits(timeout=10, retries=10, backoff=0.1, context_tokens=4096))

    async def start_late() -> None:
        await asyncio.sleep(0.5)
        await late.start()

    starting = asyncio.create_task(start_late())
    try:
        chunks = await collect(mind, mind_input("are you there?"))
    finally:
        await starting
        await late.stop()
    assert mind.failures == 0 and mind.retries >= 1 and len(chunks) >= 4


# -- through the hub --------------------------------------------------------------------------

async def ask_through_the_hub(hub: HubServer, card: Any, text: str) -> tuple[Any, Any]:
    runtime = await start_embedded(hub.url, hub.settings.secret, [card], store=InMemoryStore())
    client = Client(hub.url, hub.token("human", "ana", "Ana"), backoff=FAST)
    await client.connect()
    try:
        reply = await Person(client, card.id).ask(text, limit=20)
        status = runtime.status()[0]
        assert status["mind"] == card.mind.backend and status["mind_stats"]["replies"] == 1
        return reply, runtime.worker(card.id).mind
    finally:
        await client.close()
        await runtime.stop()


async def test_a_persona_on_the_openai_mind_streams_to_a_person(hub: HubServer, smollm2: LocalServer) -> None:
    card = samantha(backend="openai", base_url=smollm2.url + "/v1", model="smollm2", temperature=0,
                    max_tokens=32)
    reply, mind = await ask_through_the_hub(hub, card, "Hi Samantha! I love jazz.")
    assert reply.deltas and "".join(reply.deltas) == reply.msg["text"]
    assert reply.msg["from"]["id"] == "samantha" and mind.name == "openai"
    assert mind.failures == 0 and reply.text.strip()


async def test_os1_mind_local_runs_personas_on_the_shared_local_server(
        hub: HubServer, smollm2: LocalServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_shared", smollm2)  # the session's server, already running
    cards = load_personas(make_settings(tmp_path, mind="local"))
    card = next(c for c in cards if c.id == "samantha")
    card = dataclasses.replace(card, mind=dataclasses.replace(card.mind, temperature=0, max_tokens=24))
    assert card.mind.backend == "local"
    users = smollm2.users
    reply, mind = await ask_through_the_hub(hub, card, "Good morning! How are you today?")
    assert isinstance(mind, LocalMind) and mind.failures == 0
    assert reply.deltas and "".join(reply.deltas) == reply.msg["text"]
    assert smollm2.users == users and smollm2.url  # released on stop, still running for others
