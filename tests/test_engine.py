"""THE engine contract suite: every Engine implementation must pass all of it.

Tests take the `engine` fixture (default bounds) or `make_engine` (custom history/cid_ttl),
both parametrized over FACTORIES. Live delivery may be asynchronous in a real backend, so
tests subscribe to the channel first and wait for events (`wait_events`) instead of assuming
the listener ran inside the call.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.config import Settings
from server.engine.base import Engine, Event, Page
from server.engine.memory import MemoryEngine
from server.engine.redis import RedisEngine
from server.errors import Conflict
from server.routing import channels_for

ROOM = "group:g"
OTHER = "group:h"
SETTLE = 0.05  # how long to wait for events that must NOT arrive


@dataclass
class Harness:
    engine: Engine
    advance: Callable[[float], Awaitable[None]]  # let `seconds` of engine time pass
    events: list[tuple[str, Event]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, room: str, event: Event) -> None:
        self.events.append((room, event))
        self.arrived.set()

    async def wait_events(self, n: int) -> None:
        """Until at least `n` events arrived (live delivery may be asynchronous)."""
        async with asyncio.timeout(2.0):
            while len(self.events) < n:
                self.arrived.clear()
                await self.arrived.wait()


async def _memory(request: pytest.FixtureRequest, *, history: int, cid_ttl: float) -> Harness:
    now = [1000.0]

    async def advance(seconds: float) -> None:
        now[0] += seconds

    engine = MemoryEngine(history=history, cid_ttl=cid_ttl, clock=lambda: now[0])
    return Harness(engine, advance)


async def _redis(request: pytest.FixtureRequest, *, history: int, cid_ttl: float) -> Harness:
    # A flushed DB of the session's valkey-server (tests/conftest.py: redis_url). Redis
    # expires cid records on its own clock, so the fake clock becomes real time here:
    # `advance` sleeps (the cid-ttl test keeps its ttl at 0.2 s for that).
    url = request.getfixturevalue("redis_url")
    settings = Settings(redis_url=url, history=history, cid_ttl=cid_ttl,
                        node=f"suite-{uuid.uuid4().hex[:8]}")
    return Harness(RedisEngine(settings), asyncio.sleep)


# One factory per engine name: (request, *, history, cid_ttl) -> Harness.
FACTORIES: dict[str, Callable[..., Awaitable[Harness]]] = {"memory": _memory, "redis": _redis}

MakeEngine = Callable[..., Awaitable[Harness]]


@pytest.fixture(params=sorted(FACTORIES))
async def make_engine(request: pytest.FixtureRequest) -> AsyncIterator[MakeEngine]:
    made: list[Harness] = []

    async def make(*, history: int = 1000, cid_ttl: float = 600.0) -> Harness:
        h = await FACTORIES[request.param](request, history=history, cid_ttl=cid_ttl)
        await h.engine.start()
        h.engine.set_listener(h.on_event)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.engine.close()


@pytest.fixture
async def harness(make_engine: MakeEngine) -> Harness:
    return await make_engine()


@pytest.fixture
def engine(harness: Harness) -> Engine:
    return harness.engine


def msg(text: str = "hi", **extra: Any) -> Event:
    return {"t": "msg", "room": ROOM, "from": {"id": "alice", "role": "human", "name": "A"},
            "text": text, "ts": 1_700_000_000_000, **extra}


async def post(engine: Engine, room: str, n: int, *, sender: str = "alice") -> list[Event]:
    return [(await engine.append(room, msg(f"m{i}"), sender=sender, cid=None)).msg
            for i in range(n)]


async def subscribe(engine: Engine, room: str) -> None:
    for ch in channels_for(room):
        await engine.subscribe(ch)


def seqs(msgs: list[Event]) -> list[int]:
    return [m["seq"] for m in msgs]


# ---- append ---------------------------------------------------------------------------

async def test_seq_is_gapless_from_one(engine: Engine) -> None:
    assert seqs(await post(engine, ROOM, 5)) == [1, 2, 3, 4, 5]


async def test_rooms_are_independent(engine: Engine) -> None:
    await post(engine, ROOM, 3)
    assert seqs(await post(engine, OTHER, 2)) == [1, 2]
    assert seqs(await post(engine, ROOM, 1)) == [4]


async def test_mids_are_unique_strings(engine: Engine) -> None:
    mids = [m["mid"] for m in await post(engine, ROOM, 20) + await post(engine, OTHER, 20)]
    assert all(isinstance(m, str) and m for m in mids)
    assert len(set(mids)) == 40


async def test_stored_msg_is_what_was_given_plus_seq_and_mid(engine: Engine) -> None:
    given = msg("héllo", cid="c1", reply_to=3, stream="s1", meta={"k": [1, "two", None]})
    done = await engine.append(ROOM, dict(given), sender="alice", cid="c1")
    assert done.duplicate is False
    assert done.msg == {**given, "seq": 1, "mid": done.msg["mid"]}
    assert (await engine.read_after(ROOM, 0, 10)).msgs == [done.msg]
    assert await engine.read_before(ROOM, None, 10) == [done.msg]


async def test_listener_gets_each_appended_msg_once(harness: Harness) -> None:
    engine = harness.engine
    await subscribe(engine, ROOM)
    stored = await post(engine, ROOM, 3)
    await harness.wait_events(3)
    await asyncio.sleep(SETTLE)
    assert harness.events == [(ROOM, m) for m in stored]


async def test_concurrent_appends_get_every_seq_exactly_once(engine: Engine) -> None:
    async def writer(w: int) -> list[int]:
        return [(await engine.append(ROOM, msg(f"{w}-{i}"), sender=f"u{w}", cid=None)).msg["seq"]
                for i in range(50)]

    results = await asyncio.gather(*(writer(w) for w in range(10)))
    assert sorted(s for r in results for s in r) == list(range(1, 501))
    assert all(r == sorted(r) for r in results)  # each writer sees its own seqs increase
    page = await engine.read_after(ROOM, 0, 1000)
    assert seqs(page.msgs) == list(range(1, 501))
    assert {m["text"] for m in page.msgs} == {f"{w}-{i}" for w in range(10) for i in range(50)}


async def test_append_many_appends_in_order_with_each_outcome(harness: Harness) -> None:
    engine = harness.engine
    await subscribe(engine, ROOM)
    await engine.append(ROOM, msg("taken"), sender="alice", cid="c0")
    items = [(ROOM, msg(f"b{i}"), "alice", None) for i in range(3)]
    items += [(ROOM, msg("other text"), "alice", "c0"),  # the cid of another text: a conflict
              (OTHER, {**msg("elsewhere"), "room": OTHER}, "alice", None),
              (ROOM, msg("taken"), "alice", "c0")]  # a retry: the original
    out = await engine.append_many(items)
    assert isinstance(out[3], Conflict)
    done = [o for o in out if not isinstance(o, Conflict)]
    assert [(d.msg["room"], d.msg["seq"], d.duplicate) for d in done] == \
        [(ROOM, 2, False), (ROOM, 3, False), (ROOM, 4, False), (OTHER, 1, False), (ROOM, 1, True)]
    assert [m["text"] for m in (await engine.read_after(ROOM, 0, 10)).msgs] == ["taken", "b0", "b1", "b2"]
    assert await engine.append_many([]) == []
    await harness.wait_events(4)  # taken, b0..b2
    await asyncio.sleep(SETTLE)
    assert [e["seq"] for room, e in harness.events if room == ROOM] == [1, 2, 3, 4]  # the retry: not again


async def test_inbox_lists_a_users_dm_rooms_newest_first_by_side(engine: Engine) -> None:
    def dm(room: str, text: str) -> Event:
        return {**msg(text), "room": room}

    for room, n in (("dm:sam:alice", 2), ("dm:sam:bob", 1), ("dm:ava:alice", 3), ("group:g", 1)):
        for i in range(n):
            await engine.append(room, dm(room, f"{room} {i}"), sender="x", cid=None)
    await engine.append("dm:sam:alice", dm("dm:sam:alice", "again"), sender="x", cid=None)
    sam = await engine.inbox("sam", persona=True, limit=10)
    assert [(r["room"], r["seq"]) for r in sam] == [("dm:sam:alice", 3), ("dm:sam:bob", 1)]
    assert all(isinstance(r["ts"], int) and r["ts"] > 0 for r in sam)
    alice = await engine.inbox("alice", persona=False, limit=10)
    assert [(r["room"], r["seq"]) for r in alice] == [("dm:sam:alice", 3), ("dm:ava:alice", 3)]
    assert await engine.inbox("alice", persona=True, limit=10) == []  # alice is no persona
    assert await engine.inbox("sam", persona=False, limit=10) == []
    assert [r["room"] for r in await engine.inbox("sam", persona=True, limit=1)] == ["dm:sam:alice"]


# ---- cid idempotency ------------------------------------------------------------------

async def test_cid_retry_is_acknowledged_with_the_original(harness: Harness) -> None:
    engine = harness.engine
    await subscribe(engine, ROOM)
    first = await engine.append(ROOM, msg("hi", cid="c1"), sender="alice", cid="c1")
    again = await engine.append(ROOM, msg("hi", cid="c1"), sender="alice", cid="c1")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert (again.msg["seq"], again.msg["mid"]) == (first.msg["seq"], first.msg["mid"])
    assert seqs((await engine.read_after(ROOM, 0, 10)).msgs) == [1]
    await harness.wait_events(1)
    await asyncio.sleep(SETTLE)
    assert len(harness.events) == 1  # the retry is not delivered again
    assert seqs(await post(engine, ROOM, 1)) == [2]


async def test_cid_reused_for_other_text_is_a_conflict(engine: Engine) -> None:
    await engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    with pytest.raises(Conflict):
        await engine.append(ROOM, msg("something else"), sender="alice", cid="c1")
    assert seqs((await engine.read_after(ROOM, 0, 10)).msgs) == [1]
    assert seqs(await post(engine, ROOM, 1)) == [2]  # the conflict used no seq


async def test_cid_is_scoped_by_sender(engine: Engine) -> None:
    a = await engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    b = await engine.append(ROOM, msg("hi"), sender="bob", cid="c1")
    assert (a.msg["seq"], b.msg["seq"], b.duplicate) == (1, 2, False)


async def test_cid_is_scoped_by_room(engine: Engine) -> None:
    a = await engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    b = await engine.append(OTHER, msg("hi"), sender="alice", cid="c1")
    assert (a.duplicate, b.duplicate) == (False, False)
    assert a.msg["mid"] != b.msg["mid"]


async def test_no_cid_means_no_dedup(engine: Engine) -> None:
    a = await engine.append(ROOM, msg("hi"), sender="alice", cid=None)
    b = await engine.append(ROOM, msg("hi"), sender="alice", cid=None)
    assert (a.msg["seq"], b.msg["seq"], b.duplicate) == (1, 2, False)


async def test_cid_expires_after_ttl(make_engine: MakeEngine) -> None:
    h = await make_engine(cid_ttl=0.2)
    first = await h.engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    await h.advance(0.1)
    assert (await h.engine.append(ROOM, msg("hi"), sender="alice", cid="c1")).duplicate
    await h.advance(0.25)
    later = await h.engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    assert later.duplicate is False
    assert later.msg["seq"] == first.msg["seq"] + 1
    # and the new post is now the one the cid stands for
    assert (await h.engine.append(ROOM, msg("hi"), sender="alice", cid="c1")).msg == later.msg


async def test_cid_survives_retention_of_its_message(make_engine: MakeEngine) -> None:
    h = await make_engine(history=2)
    first = await h.engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    await post(h.engine, ROOM, 5)
    again = await h.engine.append(ROOM, msg("hi"), sender="alice", cid="c1")
    assert again.duplicate and again.msg["seq"] == first.msg["seq"]


# ---- retention and reads --------------------------------------------------------------

async def test_retention_keeps_the_last_n(make_engine: MakeEngine) -> None:
    engine = (await make_engine(history=5)).engine
    await post(engine, ROOM, 8)
    page = await engine.read_after(ROOM, 0, 100)
    assert seqs(page.msgs) == [4, 5, 6, 7, 8]
    assert (page.first_retained, page.last) == (4, 8)
    assert seqs(await engine.read_before(ROOM, None, 100)) == [4, 5, 6, 7, 8]


async def test_read_after_older_than_retained_starts_at_first_retained(
        make_engine: MakeEngine) -> None:
    engine = (await make_engine(history=5)).engine
    await post(engine, ROOM, 8)
    page = await engine.read_after(ROOM, 2, 100)
    assert seqs(page.msgs) == [4, 5, 6, 7, 8]
    assert (page.first_retained, page.last) == (4, 8)
    page = await engine.read_after(ROOM, 6, 100)
    assert seqs(page.msgs) == [7, 8]
    assert (page.first_retained, page.last) == (4, 8)


async def test_read_after_at_or_past_last_is_empty(engine: Engine) -> None:
    await post(engine, ROOM, 3)
    for after in (3, 4, 10**12):
        assert await engine.read_after(ROOM, after, 10) == Page([], 1, 3)


async def test_read_after_limit(engine: Engine) -> None:
    await post(engine, ROOM, 10)
    page = await engine.read_after(ROOM, 2, 3)
    assert seqs(page.msgs) == [3, 4, 5]
    assert (page.first_retained, page.last) == (1, 10)


async def test_read_before_pages_backwards(engine: Engine) -> None:
    await post(engine, ROOM, 10)
    assert seqs(await engine.read_before(ROOM, None, 3)) == [8, 9, 10]
    assert seqs(await engine.read_before(ROOM, 8, 3)) == [5, 6, 7]
    assert seqs(await engine.read_before(ROOM, 5, 3)) == [2, 3, 4]
    assert seqs(await engine.read_before(ROOM, 2, 3)) == [1]
    assert await engine.read_before(ROOM, 1, 3) == []
    assert seqs(await engine.read_before(ROOM, 100, 2)) == [9, 10]
    assert seqs(await engine.read_before(ROOM, 11, 100)) == list(range(1, 11))


async def test_read_before_older_than_retained(make_engine: MakeEngine) -> None:
    engine = (await make_engine(history=5)).engine
    await post(engine, ROOM, 8)
    assert seqs(await engine.read_before(ROOM, 6, 100)) == [4, 5]
    assert await engine.read_before(ROOM, 4, 100) == []
    assert await engine.read_before(ROOM, 2, 100) == []


async def test_empty_room_reads(engine: Engine) -> None:
    assert await engine.read_after("group:nothing", 0, 10) == Page([], 1, 0)
    assert await engine.read_after("group:nothing", 5, 10) == Page([], 1, 0)
    assert await engine.read_before("group:nothing", None, 10) == []
    assert await engine.read_before("group:nothing", 3, 10) == []


# ---- rooms and members ----------------------------------------------------------------

async def test_create_room_and_exists(engine: Engine) -> None:
    assert await engine.room_exists(ROOM) is False
    assert await engine.create_room(ROOM) is True
    assert await engine.create_room(ROOM) is False
    assert await engine.room_exists(ROOM) is True
    assert await engine.room_exists(OTHER) is False


async def test_rooms_lists_created_rooms_by_kind(engine: Engine) -> None:
    for room in ("collective:b", "group:x", "collective:a", "collective:c"):
        await engine.create_room(room)
    assert await engine.rooms("collective", 10) == ["collective:a", "collective:b", "collective:c"]
    assert await engine.rooms("group", 10) == ["group:x"]
    assert len(await engine.rooms("collective", 2)) == 2
    assert await engine.rooms("dm", 10) == []


async def test_posting_does_not_create_a_room(engine: Engine) -> None:
    await post(engine, ROOM, 1)
    assert await engine.room_exists(ROOM) is False


async def test_members(engine: Engine) -> None:
    assert await engine.members(ROOM) == []
    for user in ("carol", "alice", "bob", "alice"):
        await engine.add_member(ROOM, user)
    assert await engine.members(ROOM) == ["alice", "bob", "carol"]
    assert await engine.is_member(ROOM, "bob") is True
    assert await engine.is_member(OTHER, "bob") is False
    await engine.remove_member(ROOM, "bob")
    await engine.remove_member(ROOM, "nobody")
    await engine.remove_member(OTHER, "bob")
    assert await engine.members(ROOM) == ["alice", "carol"]
    assert await engine.is_member(ROOM, "bob") is False


# ---- presence -------------------------------------------------------------------------

async def test_presence_across_two_nodes(engine: Engine) -> None:
    assert await engine.presence_add(ROOM, "sam", "n1") is True
    assert await engine.presence_add(ROOM, "sam", "n2") is False
    assert await engine.presence_add(ROOM, "sam", "n1") is False
    assert await engine.present(ROOM) == ["sam"]
    assert await engine.presence_remove(ROOM, "sam", "n1") is False
    assert await engine.present(ROOM) == ["sam"]
    assert await engine.presence_remove(ROOM, "sam", "n2") is True
    assert await engine.present(ROOM) == []
    assert await engine.presence_remove(ROOM, "sam", "n2") is False


async def test_presence_per_room_and_user(engine: Engine) -> None:
    await engine.presence_add(ROOM, "sam", "n1")
    await engine.presence_add(ROOM, "ava", "n2")
    await engine.presence_add(OTHER, "sam", "n2")
    assert sorted(await engine.present(ROOM)) == ["ava", "sam"]
    assert await engine.present(OTHER) == ["sam"]
    assert await engine.presence_remove(ROOM, "sam", "n2") is False  # n2 never had sam here
    assert await engine.presence_remove(ROOM, "sam", "n1") is True
    assert await engine.present(ROOM) == ["ava"]
    assert await engine.present("group:empty") == []


# ---- ephemeral events -----------------------------------------------------------------

async def test_publish_reaches_the_listener_and_is_not_stored(harness: Harness) -> None:
    engine = harness.engine
    await subscribe(engine, ROOM)
    event = {"t": "typing", "room": ROOM, "from": {"id": "alice", "role": "human", "name": "A"}}
    await engine.publish(ROOM, event)
    await harness.wait_events(1)
    assert harness.events == [(ROOM, event)]
    assert await engine.read_after(ROOM, 0, 10) == Page([], 1, 0)
    assert seqs(await post(engine, ROOM, 1)) == [1]


async def test_notify_reaches_the_users_listener_room(harness: Harness) -> None:
    engine = harness.engine
    await engine.subscribe("inbox:sam")
    event = {"t": "invited", "room": ROOM, "by": {"id": "alice", "role": "human", "name": "A"}}
    await engine.notify("sam", event)
    await harness.wait_events(1)
    assert harness.events == [("user:sam", event)]


async def test_ready(engine: Engine) -> None:
    assert await engine.ready() is True


# ---- MemoryEngine only ----------------------------------------------------------------

async def test_memory_cid_table_is_bounded() -> None:
    engine = MemoryEngine(max_cids=2)
    for cid in ("a", "b", "c"):
        await engine.append(ROOM, msg(cid), sender="alice", cid=cid)
    assert (await engine.append(ROOM, msg("c"), sender="alice", cid="c")).duplicate
    assert not (await engine.append(ROOM, msg("a"), sender="alice", cid="a")).duplicate


async def test_memory_cid_expires_exactly_at_ttl() -> None:
    now = [0.0]
    engine = MemoryEngine(cid_ttl=10.0, clock=lambda: now[0])
    await engine.append(ROOM, msg(), sender="alice", cid="c")
    now[0] = 9.999
    assert (await engine.append(ROOM, msg(), sender="alice", cid="c")).duplicate
    now[0] = 10.0
    assert not (await engine.append(ROOM, msg(), sender="alice", cid="c")).duplicate
