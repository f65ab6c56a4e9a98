"""THE memory store contract suite: every MemoryStore passes all of it (in-memory and Redis,
the latter on the session's real valkey-server, flushed per test). Redis-only behaviour
(conflicting writers, a restart, Redis down) is at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from personas.evolution import Character, JournalEntry
from personas.extract import extract_facts
from personas.memory import InMemoryStore, MemoryStore, PersonMemory, StoreFull
from personas.redis_store import RedisStore
from server import keys

MakeStore = Callable[..., Awaitable[MemoryStore]]


def memory_with(text: str, person: str = "alice", seq: int = 1) -> PersonMemory:
    memory = PersonMemory(person, name=person.title())
    memory.learn(extract_facts(text), seq=seq, mid=f"m{seq}", ts=1000 * seq)
    return memory


def entry(n: int) -> JournalEntry:
    return JournalEntry(n, {"warmth": (0.5, 0.5 + n / 1000)}, f"{n} messages")


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    made: list[MemoryStore] = []

    async def make(**options: Any) -> MemoryStore:
        if request.param == "redis":
            store: MemoryStore = RedisStore(request.getfixturevalue("redis_url"), **options)
        else:
            store = InMemoryStore(**options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> MemoryStore:
    return await make_store()


# -- memory per (persona, person) ------------------------------------------------------------
async def test_get_put_delete_list(store: MemoryStore) -> None:
    assert await store.get("samantha", "alice") is None
    memory = memory_with("I love jazz")
    await store.put("samantha", memory)
    got = await store.get("samantha", "alice")
    assert got == memory and got is not memory
    got.facts.clear()  # changing a copy does not change the store
    assert await store.get("samantha", "alice") == memory
    await store.put("atlas", PersonMemory("bob"))
    assert await store.list("samantha") == ["alice"] and await store.list("atlas") == ["bob"]
    assert await store.delete("samantha", "alice") is True
    assert await store.delete("samantha", "alice") is False
    assert await store.list("samantha") == [] and await store.get("samantha", "alice") is None


async def test_the_least_recently_used_person_goes_first(make_store: MakeStore) -> None:
    store = await make_store(max_people=3)
    for person in ("a", "b", "c"):
        await store.put("samantha", PersonMemory(person))
    await store.get("samantha", "a")  # a is now the most recent
    await store.put("samantha", PersonMemory("d"))
    assert await store.list("samantha") == ["a", "c", "d"]
    assert await store.get("samantha", "b") is None
    for person in "efghij":
        await store.put("samantha", PersonMemory(person))
    assert await store.list("samantha") == ["h", "i", "j"]
    with pytest.raises(ValueError):
        await make_store(max_people=0)


async def test_update_reads_changes_and_writes_in_one_step(store: MemoryStore) -> None:
    def learn(memory: PersonMemory | None) -> PersonMemory:
        memory = memory or PersonMemory("alice")
        memory.turns += 1
        return memory

    assert (await store.update("samantha", "alice", learn) or PersonMemory("x")).turns == 1
    assert (await store.update("samantha", "alice", learn) or PersonMemory("x")).turns == 2
    got = await store.get("samantha", "alice")
    assert got is not None and got.turns == 2
    assert await store.update("samantha", "alice", lambda m: None) is None  # writes nothing
    assert await store.update("samantha", "nobody", lambda m: m) is None
    assert await store.list("samantha") == ["alice"]
    with pytest.raises(ValueError):
        await store.update("samantha", "alice", lambda m: PersonMemory("mallory"))


async def test_a_forget_between_read_and_write_stays_forgotten(store: MemoryStore) -> None:
    """The worker's pattern: read, think for a while, then record the answer with `update`."""
    await store.put("samantha", memory_with("I live in Lisbon. I love jazz."))
    read_before = await store.get("samantha", "alice")
    assert read_before is not None and len(read_before.facts) == 2

    def forget_jazz(memory: PersonMemory | None) -> PersonMemory | None:
        if memory is not None:
            memory.drop([f for f in memory.facts if f.value == "jazz"])
        return memory

    await store.update("samantha", "alice", forget_jazz)  # REST, while the persona thinks

    def answered(memory: PersonMemory | None) -> PersonMemory:
        latest = memory or read_before
        latest.last_answered = 7
        return latest

    await store.update("samantha", "alice", answered)
    after = await store.get("samantha", "alice")
    assert after is not None and after.last_answered == 7 and after.forgets == 1
    assert [f.value for f in after.facts] == ["Lisbon"]


# -- consent per person, across personas ----------------------------------------------------
async def test_consent_defaults_to_topics_and_is_per_person(store: MemoryStore) -> None:
    assert await store.consent("alice") == "topics"
    assert await store.set_consent("alice", "none") == "none"
    assert await store.set_consent("bob", "full") == "full"
    assert (await store.consent("alice"), await store.consent("bob")) == ("none", "full")
    assert await store.consent("carol") == "topics"
    await store.set_consent("alice", "topics")
    assert await store.consent("alice") == "topics"
    for bad in ("everything", "", "NONE"):
        with pytest.raises(ValueError, match="none, topics, full"):
            await store.set_consent("bob", bad)
    assert await store.consent("bob") == "full"


async def test_memory_store_bounds_consents_without_dropping_a_choice() -> None:
    # (Redis keeps one consent per user of the hub: bounded by the hub's users.)
    store = InMemoryStore(max_people=2)
    for person in ("a", "b"):
        await store.set_consent(person, "none")
    with pytest.raises(StoreFull):
        await store.set_consent("c", "none")
    await store.set_consent("a", "full")  # a stored choice can still change
    await store.set_consent("c", "topics")  # the default needs no room
    assert [await store.consent(p) for p in "abc"] == ["full", "none", "topics"]


# -- character per persona: traits and journal ------------------------------------------------
async def test_evolve_is_a_compare_and_set_with_a_journal(store: MemoryStore) -> None:
    assert await store.character("samantha") == Character({}, 0)
    assert await store.journal("samantha") == []
    assert await store.evolve("samantha", 0, {"warmth": 0.91}, entry(1)) is True
    assert await store.evolve("samantha", 0, {"warmth": 0.5}, entry(2)) is False  # stale version
    assert await store.character("samantha") == Character({"warmth": 0.91}, 1)
    assert await store.evolve("samantha", 1, {"warmth": 0.92, "curiosity": 0.8}, entry(3)) is True
    assert await store.character("samantha") == Character({"warmth": 0.92, "curiosity": 0.8}, 2)
    assert await store.journal("samantha") == [entry(3), entry(1)]  # newest first
    assert await store.journal("samantha", limit=1) == [entry(3)]
    assert await store.journal("samantha", limit=0) == []
    assert await store.character("atlas") == Character()


async def test_the_journal_is_bounded(make_store: MakeStore) -> None:
    store = await make_store(journal=5)
    for n in range(12):
        assert await store.evolve("samantha", n, {"warmth": 0.5}, entry(n))
    assert await store.journal("samantha") == [entry(n) for n in range(11, 6, -1)]


# -- the live workers of a persona --------------------------------------------------------------
async def test_roster_lists_live_workers_with_their_load_and_forgets_who_left(store: MemoryStore) -> None:
    assert await store.roster("samantha", "w1", 30.0, 3) == {"w1": 3}
    assert await store.roster("samantha", "w2", 30.0, 5) == {"w1": 3, "w2": 5}
    assert await store.roster("samantha", "w1", 30.0, 4) == {"w1": 4, "w2": 5}  # a renewal
    assert await store.roster("atlas", "w9", 30.0) == {"w9": 0}  # per persona
    assert await store.roster("samantha", "w2", 0) == {"w1": 4}  # left: gone at once
    assert await store.roster("samantha", "w1", 0) == {}


async def test_a_worker_whose_lease_runs_out_drops_out_of_the_roster(store: MemoryStore) -> None:
    await store.roster("samantha", "silent", 0.2, 7)
    assert await store.roster("samantha", "alive", 30.0) == {"silent": 7, "alive": 0}
    await asyncio.sleep(0.35)  # no renewal from "silent" past its lease
    assert await store.roster("samantha", "alive", 30.0) == {"alive": 0}


# -- Redis only --------------------------------------------------------------------------------
async def test_redis_update_redoes_the_change_after_a_conflicting_write(redis_url: str,
                                                                        redis_server: Any) -> None:
    store = RedisStore(redis_url)
    try:
        await store.put("samantha", memory_with("I love jazz"))
        other = RedisStore(redis_url)
        calls = 0

        def change(memory: PersonMemory | None) -> PersonMemory | None:
            nonlocal calls
            calls += 1
            if calls == 1:  # another worker writes between our read and our write
                with redis_server.client() as sync:
                    sync.set(keys.persona_memory("samantha", "alice"),
                             orjson.dumps(PersonMemory("alice", turns=40).to_dict()))
            assert memory is not None
            memory.turns += 1
            return memory

        got = await store.update("samantha", "alice", change)
        assert calls == 2 and got is not None and got.turns == 41 and got.facts == []
        assert (await other.get("samantha", "alice")) == got
        await other.close()
    finally:
        await store.close()


async def test_redis_memory_survives_a_new_store(redis_url: str) -> None:
    first = RedisStore(redis_url)
    await first.put("samantha", memory_with("My name is Ana"))
    await first.set_consent("alice", "full")
    await first.evolve("samantha", 0, {"warmth": 0.9}, entry(1))
    await first.close()
    second = RedisStore(redis_url)
    try:
        got = await second.get("samantha", "alice")
        assert got is not None and got.known_name == "Ana"
        assert await second.consent("alice") == "full"
        assert (await second.character("samantha")).traits == {"warmth": 0.9}
    finally:
        await second.close()


async def test_redis_down_raises_connection_error(redis_factory: Callable[..., Any]) -> None:
    server = redis_factory()
    store = RedisStore(server.url, timeout=0.5)
    try:
        await store.put("samantha", PersonMemory("alice"))
        server.stop()
        for call in (store.get("samantha", "alice"), store.consent("alice"), store.journal("samantha"),
                     store.update("samantha", "alice", lambda m: m)):
            with pytest.raises(ConnectionError):
                await call
    finally:
        await store.close()


async def test_redis_roster_keys_expire_with_the_last_lease(redis_url: str, redis_server: Any) -> None:
    store = RedisStore(redis_url)
    try:
        await store.roster("samantha", "w1", 2.0, 1)
        for key in (keys.persona_workers("samantha"), keys.persona_load("samantha")):
            assert 0 < await store._redis.pttl(key) <= 2000  # nothing outlives its workers
    finally:
        await store.close()
