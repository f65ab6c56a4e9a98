"""REST over persona memory: /api/me/memory, /api/me/consent and GET /api/personas/{id},
against a real hub whose embedded Samantha shares the store the API reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from conftest import HubServer, make_settings, start_hub
from persona_util import FAST, Person, card, eventually, people, personas, store

from clients.sdk import Client
from personas.memory import InMemoryStore, MemoryStore
from personas.redis_store import RedisStore
from personas.runtime import start_embedded
from server.config import Settings
from server.serve import describe, make_store

__all__ = ["people", "personas", "store"]  # fixtures, used by name

Start = Callable[..., Any]


@pytest.fixture
async def hub(hub_settings: Settings, store: InMemoryStore) -> AsyncIterator[HubServer]:
    """A hub like `os1 serve` makes it: Samantha's card in its catalog, the store on the app."""
    server = await start_hub(hub_settings, catalog=[describe(card("samantha"))], memory=store)
    try:
        yield server
    finally:
        await server.stop()


async def call(hub: HubServer, method: str, path: str, token: str | None = None,
               body: Any = None, raw: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.request(
            method, hub.base + path, headers=headers, json=body, data=raw) as r:
        return r.status, await r.json()


def alice(hub: HubServer) -> str:
    return hub.token("human", "alice", "Alice")


# -- memory ----------------------------------------------------------------------------------------
async def test_what_samantha_knows_with_provenance(hub: HubServer, personas: Start, people: Start,
                                                   store: MemoryStore) -> None:
    await personas("samantha")
    person = await people("alice")
    taught = await person.say("My name is Ana. I live in Lisbon. I love jazz and I hate mornings.")
    await person.reply_to(taught)
    await person.ask("I usually walk my dog before work. Every morning I drink green tea!")

    status, body = await call(hub, "GET", "/api/me/memory/samantha", alice(hub))
    assert status == 200 and body["persona"] == "samantha" and body["person"] == "alice"
    facts = {f["text"]: f for f in body["facts"]}
    lisbon = facts["You live in Lisbon"]
    assert lisbon["source"]["seq"] == taught and lisbon["source"]["room"] == "dm:samantha:alice"
    assert lisbon["source"]["mid"] and lisbon["kind"] == "home" and lisbon["value"] == "Lisbon"
    assert body["preferences"] == {"likes": ["jazz"], "dislikes": ["mornings"], "favourites": {}}
    assert "every morning you drink green tea" in body["habits"]
    assert body["name"] == "Ana" and body["mood"]["label"] in ("bright", "even", "low")
    assert "you live in Lisbon" in body["summary"] and body["turns"] == 2

    # someone else's memory is never reachable: the person is the token's sub
    status, bob = await call(hub, "GET", "/api/me/memory/samantha", hub.token("human", "bob"))
    assert status == 200 and bob["facts"] == [] and bob["person"] == "bob"


async def test_forget_one_fact_then_everything(hub: HubServer, personas: Start, people: Start,
                                               store: MemoryStore) -> None:
    await personas("samantha")
    person = await people("alice")
    await person.ask("My name is Ana. I live in Lisbon. I love jazz.")
    _, body = await call(hub, "GET", "/api/me/memory/samantha", alice(hub))
    lisbon = next(f for f in body["facts"] if f["value"] == "Lisbon")

    status, gone = await call(hub, "DELETE", f"/api/me/memory/samantha/{lisbon['id']}", alice(hub))
    assert status == 200 and gone == {"forgotten": [lisbon]}
    memory = await store.get("samantha", "alice")  # really gone from the store
    assert memory is not None and "Lisbon" not in {f.value for f in memory.facts}
    assert "Lisbon" not in memory.summary
    status, again = await call(hub, "DELETE", f"/api/me/memory/samantha/{lisbon['id']}", alice(hub))
    assert status == 404 and again["error"] == "not_found" and lisbon["id"] in again["message"]

    recalled = await person.ask("What do you know about me?")
    assert "Lisbon" not in recalled.text and "jazz" in recalled.text
    assert "Lisbon" not in (await person.ask("where do I live?")).text

    status, gone = await call(hub, "DELETE", "/api/me/memory/samantha", alice(hub))
    assert status == 200 and {f["value"] for f in gone["forgotten"]} == {"Ana", "jazz"}
    memory = await store.get("samantha", "alice")
    assert memory is not None and memory.facts == [] and memory.summary == ""
    assert memory.last_answered > 0  # the conversation cursor stays: no old message answered again
    after = await person.ask("what do you know about me?")
    assert "Ana" not in after.text and "jazz" not in after.text
    status, empty = await call(hub, "DELETE", "/api/me/memory/samantha", alice(hub))
    assert status == 200 and empty == {"forgotten": []}


async def test_memory_needs_a_human_token_and_a_persona_id(hub: HubServer) -> None:
    status, body = await call(hub, "GET", "/api/me/memory/samantha")
    assert status == 401 and body["error"] == "unauthorized"
    for role in ("observer", "persona", "admin"):
        status, body = await call(hub, "GET", "/api/me/memory/samantha", hub.token(role, "x"))
        assert status == 403 and body["error"] == "forbidden"
    status, body = await call(hub, "GET", "/api/me/memory/no%20such", alice(hub))
    assert status == 400 and body["error"] == "bad_request"
    status, body = await call(hub, "GET", "/api/me/memory/nobody", alice(hub))
    assert status == 200 and body["facts"] == [] and body["mood"] is None


# -- consent -----------------------------------------------------------------------------------------
async def test_consent_is_kept_per_person(hub: HubServer, store: MemoryStore) -> None:
    assert await call(hub, "GET", "/api/me/consent", alice(hub)) == (200, {"consent": "topics"})
    assert await call(hub, "PUT", "/api/me/consent", alice(hub), {"consent": "none"}) == (
        200, {"consent": "none"})
    assert await call(hub, "GET", "/api/me/consent", alice(hub)) == (200, {"consent": "none"})
    assert await store.consent("alice") == "none" and await store.consent("bob") == "topics"
    for bad in ({"consent": "all"}, {"consent": 3}, {}, ["none"]):
        status, body = await call(hub, "PUT", "/api/me/consent", alice(hub), bad)
        assert status == 400 and body["error"] == "bad_request", bad
        assert "none, topics, full" in body["message"] or "JSON object" in body["message"]
    status, body = await call(hub, "PUT", "/api/me/consent", alice(hub), raw="{not json")
    assert status == 400 and body["error"] == "bad_request"
    assert await store.consent("alice") == "none"
    observer = hub.token("observer", "dash")
    assert (await call(hub, "PUT", "/api/me/consent", observer, {"consent": "full"}))[0] == 403


async def test_a_hub_without_memory_says_so(tmp_path: Any) -> None:
    bare = await start_hub(make_settings(tmp_path))  # no personas of its own, no Redis
    try:
        for method, path in (("GET", "/api/me/memory/samantha"), ("DELETE", "/api/me/memory/samantha"),
                             ("DELETE", "/api/me/memory/samantha/abc"), ("GET", "/api/me/consent")):
            status, body = await call(bare, method, path, alice(bare))
            assert status == 404 and body["error"] == "not_available", (method, path)
            assert "no memory" in body["message"]
        assert (await call(bare, "GET", "/api/me/consent"))[0] == 401  # the token comes first
    finally:
        await bare.stop()


def test_serve_makes_one_store_redis_when_configured(tmp_path: Any) -> None:
    cards = [card("samantha")]
    assert make_store(make_settings(tmp_path), []) is None
    assert isinstance(make_store(make_settings(tmp_path), cards), InMemoryStore)
    redis = make_store(make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0"), [])
    assert isinstance(redis, RedisStore)


async def test_redis_down_is_503(tmp_path: Any, redis_factory: Callable[..., Any]) -> None:
    server = redis_factory()
    memory = RedisStore(server.url, timeout=0.5)
    node = await start_hub(make_settings(tmp_path), memory=memory)
    try:
        assert (await call(node, "GET", "/api/me/consent", alice(node)))[0] == 200
        server.stop()
        status, body = await call(node, "GET", "/api/me/memory/samantha", alice(node))
        assert status == 503 and body["error"] == "unavailable"
        status, body = await call(node, "GET", "/api/personas/samantha", alice(node))
        assert status == 503 and body["error"] == "unavailable"
    finally:
        await node.stop()


async def test_memory_survives_a_restart_with_redis(tmp_path: Any, redis_url: str) -> None:
    samantha = [card("samantha")]
    for round_ in range(2):  # the same Redis, a new hub, store and persona each time
        settings = make_settings(tmp_path, redis_url=redis_url)
        memory = RedisStore(redis_url)
        node = await start_hub(settings, catalog=[describe(samantha[0])], memory=memory)
        runtime = await start_embedded(node.url, settings.secret, samantha, store=memory)
        client = Client(node.url, node.token("human", "alice", "Alice"), backoff=FAST)
        await client.connect()
        try:
            person = Person(client, "samantha")
            if round_ == 0:
                await person.ask("I live in Lisbon")
            else:
                assert "Lisbon" in (await person.ask("where do I live?")).text
                _, body = await call(node, "GET", "/api/me/memory/samantha", alice(node))
                assert [f["value"] for f in body["facts"]] == ["Lisbon"]
        finally:
            await client.close()
            await runtime.stop()
            await node.stop()


# -- evolution: GET /api/personas/{id} -----------------------------------------------------------------
async def test_persona_shows_its_card_traits_and_journal(hub: HubServer, personas: Start, people: Start,
                                                        store: MemoryStore) -> None:
    status, body = await call(hub, "GET", "/api/personas/samantha", alice(hub))
    assert status == 200 and body["online"] is False and body["journal"] == []
    assert body["traits"]["warmth"] == {"value": 0.9, "start": 0.9, "min": 0.7, "max": 1.0}
    assert body["name"] == "Samantha" and body["mind"] == "reflex"

    runtime = await personas("samantha", evolve_every=0.05)
    person = await people("alice")
    for text in ("haha you are so funny!", "lol, what's your favourite song?", "haha I love it"):
        await person.ask(text)

    async def journaled() -> bool:
        return bool(await store.journal("samantha"))

    await eventually(journaled)
    status, body = await call(hub, "GET", "/api/personas/samantha?journal=5", hub.token("observer", "d"))
    assert status == 200 and body["online"] is True and body["workers"] == 1
    playful = body["traits"]["playfulness"]
    assert playful["start"] < playful["value"] <= playful["max"]
    [entry, *_] = body["journal"]
    assert entry["changes"]["playfulness"]["to"] > entry["changes"]["playfulness"]["from"]
    assert entry["why"].startswith(("1 message", "2 messages", "3 messages")) and "jokes" in entry["why"]
    assert entry["ts"] > 1_600_000_000_000 and "alice" not in str(body["journal"]).lower()
    # what the worker's mind reads now is what the API shows
    assert runtime.worker("samantha").evolver.traits["playfulness"] == playful["value"]
    # and the list (the dashboard's) carries each persona's newest change
    status, listed = await call(hub, "GET", "/api/personas", hub.token("observer", "d"))
    [sam] = [p for p in listed["personas"] if p["id"] == "samantha"]
    newest = (await store.journal("samantha", 1))[0].to_dict()
    assert sam["last_change"] == newest and "playfulness" in sam["last_change"]["changes"]


async def test_persona_errors(hub: HubServer) -> None:
    assert (await call(hub, "GET", "/api/personas/samantha"))[0] == 401
    status, body = await call(hub, "GET", "/api/personas/nobody", alice(hub))
    assert status == 404 and body["error"] == "not_found"
    for bad in ("journal=-1", "journal=abc", "journal=101"):
        status, body = await call(hub, "GET", f"/api/personas/samantha?{bad}", alice(hub))
        assert status == 400 and "journal" in body["message"], bad
    status, body = await call(hub, "GET", "/api/personas/samantha?journal=0", alice(hub))
    assert status == 200 and body["journal"] == []
