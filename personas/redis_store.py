"""RedisStore: persona memory in Redis (or Valkey), kept across restarts and shared by every
worker of a persona. The same contract and test suite as InMemoryStore
(tests/test_personas_store.py).

Keys are named in server/keys.py; all of one persona's carry its `{persona}` hash tag. A
memory is one JSON string per (persona, person), and a sorted set ranks the persona's people
by last use: memory_put.lua trims the least recently used past ``max_people``. `update` is
optimistic (WATCH the person's key, MULTI, retried on a conflict), so a forget from REST
is never overwritten by a worker that read the memory before it. Evolving traits is a
compare-and-set with the journal entry in one script (evolve.lua).

While Redis cannot be reached every call raises the builtin ConnectionError (as RedisEngine
does), which the REST API answers with 503 and a worker logs as a failed answer.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import WatchError

from personas.evolution import JOURNAL_MAX, Character, JournalEntry
from personas.memory import DEFAULT_CONSENT, Change, Consent, MemoryStore, PersonMemory, check_consent
from server import keys
from server.engine.redis import as_unavailable

P = ParamSpec("P")
T = TypeVar("T")
SCRIPTS = Path(__file__).parent
UPDATE_ATTEMPTS = 16  # WATCH conflicts on one person's memory in a row before giving up




def _memory(raw: bytes | str | None) -> PersonMemory | None:
    return None if raw is None else PersonMemory.from_dict(orjson.loads(raw))


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisStore(MemoryStore):
    """``max_people`` is per persona (the in-memory store counts all); ``timeout`` bounds
    every command; the pool holds up to ``pool_size`` connections."""

    shared = True

    def __init__(self, url: str, *, max_people: int = 100_000, journal: int = JOURNAL_MAX,
                 timeout: float = 2.0, pool_size: int = 32) -> None:
        if max_people < 1 or journal < 1:
            raise ValueError("max_people and journal must be >= 1")
        self.max_people, self.journal_max = max_people, journal
        # No retries inside redis-py: a call either answers within `timeout` or fails loudly.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=timeout, socket_timeout=timeout,
            socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0), protocol=2)
        self._redis = Redis(connection_pool=pool)
        self._get = self._redis.register_script((SCRIPTS / "memory_get.lua").read_text())
        self._put = self._redis.register_script((SCRIPTS / "memory_put.lua").read_text())
        self._evolve = self._redis.register_script((SCRIPTS / "evolve.lua").read_text())
        self._collective = self._redis.register_script((SCRIPTS / "collective_budget.lua").read_text())
        self._roster = self._redis.register_script((SCRIPTS / "roster.lua").read_text())

    async def close(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()

    def _put_args(self, persona: str, memory: PersonMemory) -> dict[str, Any]:
        return {"keys": [keys.persona_memory(persona, memory.person), keys.persona_people(persona)],
                "args": [memory.person, orjson.dumps(memory.to_dict()), self.max_people,
                         keys.persona_memory(persona, "")]}

    # -- memory per (persona, person) ----------------------------------------------------------
    @as_unavailable
    async def get(self, persona: str, person: str) -> PersonMemory | None:
        raw = await self._get(keys=[keys.persona_memory(persona, person), keys.persona_people(persona)],
                              args=[person])
        return _memory(raw)

    @as_unavailable
    async def put(self, persona: str, memory: PersonMemory) -> None:
        await self._put(**self._put_args(persona, memory))

    @as_unavailable
    async def update(self, persona: str, person: str, change: Change) -> PersonMemory | None:
        key = keys.persona_memory(persona, person)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(UPDATE_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    memory = change(_memory(await pipe.get(key)))
                    if memory is None:
                        return None  # leaving the block resets the pipeline: UNWATCH
                    if memory.person != person:
                        raise ValueError(f"update of {person!r} returned the memory of {memory.person!r}")
                    pipe.multi()  # type: ignore[no-untyped-call]  # (untyped in redis-py)
                    await self._put(**self._put_args(persona, memory), client=pipe)
                    await pipe.execute()
                    return memory
                except WatchError:
                    continue  # written meanwhile: read it again and redo the change
        raise ConnectionError(f"redis: the memory of {person!r} kept changing; "
                              f"gave up after {UPDATE_ATTEMPTS} attempts")

    @as_unavailable
    async def delete(self, persona: str, person: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.persona_memory(persona, person))
            pipe.zrem(keys.persona_people(persona), person)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    @as_unavailable
    async def list(self, persona: str) -> builtins.list[str]:
        people = await self._redis.zrange(keys.persona_people(persona), 0, -1)
        return sorted(_text(p) for p in people)

    # -- consent per person ----------------------------------------------------------------------
    @as_unavailable
    async def consent(self, person: str) -> Consent:
        raw = await self._redis.hget(keys.CONSENT, person)
        try:
            return DEFAULT_CONSENT if raw is None else check_consent(_text(raw))
        except ValueError:
            return DEFAULT_CONSENT  # written by something else: the safe default, not a crash

    @as_unavailable
    async def set_consent(self, person: str, value: str) -> Consent:
        consent = check_consent(value)
        if consent == DEFAULT_CONSENT:
            await self._redis.hdel(keys.CONSENT, person)  # the default costs nothing to keep
        else:
            await self._redis.hset(keys.CONSENT, person, consent)
        return consent

    # -- character per persona ------------------------------------------------------------------
    @as_unavailable
    async def character(self, persona: str) -> Character:
        version, traits = await self._redis.hmget(keys.persona_traits(persona), ["v", "traits"])
        if version is None or traits is None:
            return Character()
        values = {str(k): float(v) for k, v in orjson.loads(traits).items()}
        return Character(values, int(version))

    @as_unavailable
    async def evolve(self, persona: str, version: int, traits: Mapping[str, float],
                     entry: JournalEntry) -> bool:
        won = await self._evolve(
            keys=[keys.persona_traits(persona), keys.persona_journal(persona)],
            args=[version, orjson.dumps(dict(traits)), orjson.dumps(entry.to_dict()), self.journal_max])
        return bool(won)

    @as_unavailable
    async def journal(self, persona: str, limit: int = JOURNAL_MAX) -> builtins.list[JournalEntry]:
        if limit <= 0:
            return []
        raw = await self._redis.lrange(keys.persona_journal(persona), 0, limit - 1)
        return [JournalEntry.from_dict(orjson.loads(item)) for item in raw]

    # -- the live workers of a persona ---------------------------------------------------------
    @as_unavailable
    async def roster(self, persona: str, worker: str, lease: float, conversations: int = 0) -> dict[str, int]:
        flat = await self._roster(keys=[keys.persona_workers(persona), keys.persona_load(persona)],
                                  args=[worker, max(0, round(lease * 1000)), conversations])
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    # -- the collective's budget, shared by every node -----------------------------------------
    @as_unavailable
    async def collective_take(self, turn: str, limit: int, window: float) -> tuple[int, float]:
        used, wait = await self._collective(keys=[keys.COLLECTIVE_BUDGET],
                                            args=[turn, limit, max(1, round(window * 1000))])
        return int(used), int(wait) / 1000

    @as_unavailable
    async def collective_give_back(self, turn: str) -> None:
        await self._redis.zrem(keys.COLLECTIVE_BUDGET, turn)
