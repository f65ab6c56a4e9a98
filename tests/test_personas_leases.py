"""Several workers of one persona share its conversations (personas.leases) over a real hub:
each message is answered by one of them, once; when a worker goes — leaving, or silent past
its lease — the others take its conversations over and answer what was pending."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from persona_util import Person, eventually, people, personas, store

from personas.collective import CollectiveConfig
from personas.memory import InMemoryStore
from personas.runtime import Runtime

__all__ = ["people", "personas", "store"]  # fixtures, used by name

Start = Callable[..., Any]
FAST = {"lease": 1.5, "beat": 0.1}  # a beat late under load is not a lapse


async def both_see(*runtimes: Runtime, workers: int) -> None:
    async def seen() -> bool:
        return all(len(r.worker("samantha").roster.loads) == workers for r in runtimes)
    await eventually(seen, limit=5)


async def replies_once(person: Person, seqs: list[int]) -> None:
    """Every seq in ``seqs`` got exactly one reply from the persona, and nothing else did."""
    async def all_answered() -> bool:
        history = await person.client.history(person.room, limit=100)
        return {m.get("reply_to") for m in history if m["from"]["id"] == "samantha"} >= set(seqs)
    await eventually(all_answered, limit=15)
    await asyncio.sleep(0.3)  # room for a second answer to show up, if one were coming
    history = await person.client.history(person.room, limit=100)
    answers = Counter(m.get("reply_to") for m in history if m["from"]["id"] == "samantha")
    assert answers == Counter({seq: 1 for seq in seqs}), answers


async def test_two_workers_share_the_conversations_and_answer_each_message_once(
        personas: Start, people: Start) -> None:
    a = await personas("samantha", **FAST)
    b = await personas("samantha", **FAST)
    await both_see(a, b, workers=2)
    crowd = [await people(f"p{i}") for i in range(24)]
    seqs = await asyncio.gather(*(p.say("hello, I love gardens") for p in crowd))
    await asyncio.gather(*(replies_once(p, [s]) for p, s in zip(crowd, seqs, strict=True)))
    answered = [r.worker("samantha").stats["answered"] for r in (a, b)]
    assert sum(answered) == 24 and min(answered) > 0, answered  # shared, none twice
    # Honest: either worker counts the people the other one talks with too.
    assert a.worker("samantha").head_count() == 24 == b.worker("samantha").head_count()


async def test_a_worker_that_leaves_hands_its_pending_messages_over(
        personas: Start, people: Start) -> None:
    a = await personas("samantha", **FAST)
    stuck = await personas("samantha", chunk_delay=30.0, **FAST)  # thinks, never finishes
    await both_see(a, stuck, workers=2)
    crowd = [await people(f"p{i}") for i in range(16)]
    seqs = await asyncio.gather(*(p.say("hi, my name is Robin") for p in crowd))

    async def stuck_has_some() -> bool:
        return bool(stuck.worker("samantha")._running)
    await eventually(stuck_has_some)
    await stuck.stop()  # says goodbye: `a` takes over at its next beat
    await asyncio.gather(*(replies_once(p, [s]) for p, s in zip(crowd, seqs, strict=True)))
    assert a.worker("samantha").stats["answered"] == 16


class Partitioned(InMemoryStore):
    """The shared store as one worker sees it: its lease renewals fail once cut off (a
    network partition between that worker and the store); everything else is the store."""

    def __init__(self, shared: InMemoryStore) -> None:
        self.__dict__ = shared.__dict__  # the same data: one store, two views
        self.cut = False

    async def roster(self, persona: str, worker: str, lease: float, conversations: int = 0) -> dict[str, int]:
        if self.cut:
            raise ConnectionError("partitioned from the store")
        return await super().roster(persona, worker, lease, conversations)


async def test_a_silent_worker_loses_its_conversations_when_its_lease_runs_out(
        personas: Start, people: Start, store: InMemoryStore) -> None:
    a = await personas("samantha", **FAST)
    view = Partitioned(store)
    silent = await personas("samantha", store=view, chunk_delay=1.5, **FAST)
    await both_see(a, silent, workers=2)
    view.cut = True  # no goodbye, no renewal: only the lease running out tells `a`
    crowd = [await people(f"p{i}") for i in range(16)]
    seqs = await asyncio.gather(*(p.say("hi, I live in Lisbon") for p in crowd))

    async def a_alone() -> bool:
        return len(a.worker("samantha").roster.loads) == 1
    await eventually(a_alone, limit=5)
    # `a` answers everything; the silent worker, still thinking, finishes later and posts
    # its replies with the same cids: the hub keeps one answer per message.
    await asyncio.gather(*(replies_once(p, [s]) for p, s in zip(crowd, seqs, strict=True)))
    await asyncio.sleep(2.0)  # past the silent worker's slow replies
    await asyncio.gather(*(replies_once(p, [s]) for p, s in zip(crowd, seqs, strict=True)))


async def test_one_worker_of_a_persona_speaks_in_the_collective_and_another_takes_over(
        personas: Start) -> None:
    quiet = CollectiveConfig(greet=False, reflect=False, consult=False)
    a = await personas("samantha", collective=quiet, **FAST)
    b = await personas("samantha", collective=quiet, **FAST)
    await both_see(a, b, workers=2)

    def leaders() -> list[Runtime]:
        return [r for r in (a, b) if r.worker("samantha")._leading]

    async def one_leader() -> bool:
        return len(leaders()) == 1
    await eventually(one_leader)  # never two voices for one persona
    leader = leaders()[0]
    other = b if leader is a else a
    await leader.stop()

    async def other_leads() -> bool:
        return other.worker("samantha")._leading
    await eventually(other_leads, limit=5)
