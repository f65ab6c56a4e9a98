"""RedisEngine behaviour the shared suite (test_engine.py) cannot show: Pub/Sub gaps filled
from the stream, one delivery per node across overlapping subscriptions, Redis down and
back, readiness that needs publish->subscribe, dm rooms first seen during an outage,
presence of a node that died, calls queueing for Redis (and not, when it is away).

Real valkey-server processes only (tests/redis_server.py); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from redis_server import RedisServer
from structlog.testing import capture_logs

from server import keys
from server.config import Settings
from server.engine import redis as redis_engine
from server.engine.base import Event
from server.engine.redis import RedisEngine
from server.engine.redis_inbox import INBOX_TTL_MS

ROOM = "group:g"
DM = "dm:samantha:alice"
WITHIN = 5.0  # bound of every wait for something that must happen
FAST = {"heartbeat": 0.1, "node_ttl": 0.5, "timeout": 0.5, "probe_timeout": 0.3}


class Node:
    """One engine and what its listener received."""

    def __init__(self, engine: RedisEngine) -> None:
        self.engine = engine
        self.events: list[tuple[str, Event]] = []
        engine.set_listener(lambda room, event: self.events.append((room, event)))

    def seqs(self, room: str) -> list[int]:
        return [e["seq"] for r, e in self.events if r == room and e["t"] == "msg"]


MakeNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(redis_url: str) -> AsyncIterator[MakeNode]:
    made: list[Node] = []

    async def make(url: str = redis_url, node: str = "", history: int = 100,
                   **bounds: Any) -> Node:
        settings = Settings(redis_url=url, node=node or f"n-{uuid.uuid4().hex[:6]}",
                            history=history)
        n = Node(RedisEngine(settings, **{**FAST, **bounds}))
        await n.engine.start()
        made.append(n)
        return n

    yield make
    for n in made:
        await n.engine.close()


async def until(cond: Callable[[], Any], what: str, within: float = WITHIN) -> None:
    deadline = time.monotonic() + within
    while not await _value(cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)


async def _value(v: Any) -> Any:
    return await v if asyncio.iscoroutine(v) else v


def msg(text: str, room: str = ROOM) -> Event:
    return {"t": "msg", "room": room, "from": {"id": "alice", "role": "human", "name": "A"},
            "text": text, "ts": 1}


async def post(engine: RedisEngine, room: str, *texts: str) -> list[int]:
    return [(await engine.append(room, msg(t, room), sender="alice", cid=None)).msg["seq"]
            for t in texts]


def store_unpublished(server_url: str, room: str, seq: int) -> None:
    """Put msg `seq` in the room's stream as append.lua would, but publish nothing: what a
    node sees when Pub/Sub lost a message."""
    import redis

    with redis.Redis.from_url(server_url) as r:
        assert r.incr(keys.seq(room)) == seq
        stored = msgpack.packb({**msg(f"lost-{seq}", room), "mid": uuid.uuid4().hex, "seq": seq})
        r.xadd(keys.log(room), {"m": stored}, id=f"{seq}-0")


async def test_nodes_share_the_stores_epoch(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    assert a.engine.epoch == b.engine.epoch


# ---- ordering and gaps ------------------------------------------------------------------

async def test_a_seq_jump_on_pubsub_is_filled_from_the_stream(make_node: MakeNode,
                                                               redis_url: str) -> None:
    n = await make_node()
    await n.engine.subscribe(f"room:{ROOM}")
    await post(n.engine, ROOM, "one")
    await until(lambda: n.seqs(ROOM) == [1], "msg 1 live")
    store_unpublished(redis_url, ROOM, 2)
    store_unpublished(redis_url, ROOM, 3)
    await post(n.engine, ROOM, "four")
    await until(lambda: len(n.seqs(ROOM)) >= 4, "msgs 2-4")
    await asyncio.sleep(0.1)
    assert n.seqs(ROOM) == [1, 2, 3, 4]
    assert [e["text"] for _, e in n.events] == ["one", "lost-2", "lost-3", "four"]


async def test_a_gap_in_a_room_reached_through_a_pattern(make_node: MakeNode,
                                                        redis_url: str) -> None:
    n = await make_node()
    await n.engine.subscribe("inbox:alice")
    await post(n.engine, DM, "one")
    await until(lambda: n.seqs(DM) == [1], "dm msg 1")  # the room is tracked from here
    store_unpublished(redis_url, DM, 2)
    await post(n.engine, DM, "three")
    await until(lambda: n.seqs(DM) == [1, 2, 3], "dm msgs 2-3 in order")


async def test_two_nodes_see_every_seq_once_in_order(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    for n in (a, b):
        await n.engine.subscribe(f"room:{ROOM}")

    async def writer(n: Node, who: str) -> None:
        for i in range(100):
            await n.engine.append(ROOM, msg(f"{who}{i}"), sender=who, cid=None)

    await asyncio.gather(writer(a, "a"), writer(b, "b"))
    for n in (a, b):
        await until(lambda n=n: len(n.seqs(ROOM)) >= 200, "200 msgs")
    await asyncio.sleep(0.1)
    assert a.seqs(ROOM) == b.seqs(ROOM) == list(range(1, 201))


# ---- exactly once per node --------------------------------------------------------------

async def test_overlapping_subscriptions_deliver_each_event_once(make_node: MakeNode) -> None:
    n = await make_node()
    for channel in ("inbox:samantha", "inbox:alice", "collective", f"room:{ROOM}"):
        await n.engine.subscribe(channel)
    typing = {"t": "typing", "room": DM, "from": {"id": "alice", "role": "human", "name": "A"}}
    await post(n.engine, DM, "hello")  # matches dm:samantha:* and dm:*:alice
    await n.engine.publish(DM, typing)
    await n.engine.notify("alice", {"t": "invited", "room": ROOM})
    await post(n.engine, "dm:sam:sam", "unheard")  # no subscription covers it yet
    await n.engine.subscribe("inbox:sam")
    await post(n.engine, "dm:sam:sam", "both sides")  # dm:sam:* and dm:*:sam
    await post(n.engine, "collective:c", "c")
    await until(lambda: len(n.events) >= 5, "5 events")
    await asyncio.sleep(0.2)
    got = [(room, e["t"], e.get("text")) for room, e in n.events]
    assert got == [(DM, "msg", "hello"), (DM, "typing", None), ("user:alice", "invited", None),
                   ("dm:sam:sam", "msg", "both sides"), ("collective:c", "msg", "c")]


async def test_unsubscribing_one_overlap_keeps_the_other(make_node: MakeNode) -> None:
    n = await make_node()
    await n.engine.subscribe("inbox:samantha")
    await n.engine.subscribe("inbox:alice")
    await n.engine.unsubscribe("inbox:samantha")
    await post(n.engine, DM, "still mine")
    await until(lambda: n.seqs(DM) == [1], "delivered via inbox:alice")
    await n.engine.unsubscribe("inbox:alice")
    await post(n.engine, DM, "nobody's")
    await asyncio.sleep(0.2)
    assert n.seqs(DM) == [1]


async def test_a_foreign_payload_on_a_room_channel_is_dropped(make_node: MakeNode,
                                                              redis_url: str) -> None:
    import redis

    n = await make_node()
    await n.engine.subscribe(f"room:{ROOM}")
    with redis.Redis.from_url(redis_url) as r:
        for junk in (b"\xc1", b"not msgpack at all", msgpack.packb([1, 2])):
            r.publish(keys.channel(ROOM), junk)
    await post(n.engine, ROOM, "fine")
    await until(lambda: n.seqs(ROOM) == [1], "the reader lives on")
    assert len(n.events) == 1


# ---- Redis down, Pub/Sub broken ---------------------------------------------------------

async def test_unavailable_while_redis_is_down_then_recovers(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory(appendonly=True)
    n = await make_node(server.url)
    await n.engine.subscribe(f"room:{ROOM}")
    assert await post(n.engine, ROOM, "before") == [1]
    epoch = n.engine.epoch
    server.stop()
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):  # the builtin: the hub answers `unavailable`
        await n.engine.append(ROOM, msg("lost?"), sender="alice", cid="c1")
    with pytest.raises(ConnectionError):
        await n.engine.read_after(ROOM, 0, 10)
    assert await n.engine.ready() is False
    assert time.monotonic() - t0 < 3 * FAST["timeout"] + 1
    server.start()  # same port, data back from the AOF
    await until(n.engine.ready, "ready after the restart")
    assert n.engine.epoch == epoch  # the same history: clients keep their seqs
    assert await post(n.engine, ROOM, "after") == [2]
    await until(lambda: n.seqs(ROOM) == [1, 2], "live delivery resumed")
    assert [m["text"] for m in (await n.engine.read_after(ROOM, 0, 10)).msgs] == ["before", "after"]


async def test_redis_back_without_its_data_starts_the_rooms_over(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()  # no AOF: a restart loses every log
    n = await make_node(server.url)
    await n.engine.subscribe(f"room:{ROOM}")
    await post(n.engine, ROOM, "a", "b", "c")
    await until(lambda: n.seqs(ROOM) == [1, 2, 3], "first life")
    epoch = n.engine.epoch
    server.stop()
    server.start()
    await until(n.engine.ready, "ready after the restart")
    assert n.engine.epoch != epoch  # clients learn from welcome that seqs start over
    assert await post(n.engine, ROOM, "new") == [1]  # seq restarted: not dropped as old
    await until(lambda: n.seqs(ROOM) == [1, 2, 3, 1], "the new log delivered")


async def break_pubsub(server: RedisServer) -> None:
    """Pub/Sub connections dropped and not allowed back; plain commands still work."""
    with server.client() as r:
        r.execute_command("ACL", "SETUSER", "default", "-subscribe", "-psubscribe")
        r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")


def mend_pubsub(server: RedisServer) -> None:
    with server.client() as r:
        r.execute_command("ACL", "SETUSER", "default", "+@all")


async def test_ready_needs_publish_to_reach_the_subscriber(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    n = await make_node(server.url)
    assert await n.engine.ready() is True
    await break_pubsub(server)
    await until(lambda: _not(n.engine.ready()), "ready() false with pub/sub broken")
    with server.client() as r:
        assert r.ping() is True  # a PING-only check would say ready
    assert await post(n.engine, ROOM, "stored anyway") == [1]
    mend_pubsub(server)
    await until(n.engine.ready, "ready() again")


async def _not(v: Awaitable[bool]) -> bool:
    return not await v


async def test_msgs_missed_while_pubsub_was_down_are_recovered_from_the_stream(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    reader, writer = await make_node(server.url), await make_node(server.url)
    await reader.engine.subscribe(f"room:{ROOM}")
    await reader.engine.subscribe("inbox:alice")
    await post(writer.engine, ROOM, "g1")
    await post(writer.engine, DM, "d1")
    await until(lambda: reader.seqs(ROOM) == [1] and reader.seqs(DM) == [1], "live msgs")
    await break_pubsub(server)
    await until(lambda: _not(reader.engine.ready()), "reader down")
    await post(writer.engine, ROOM, "g2", "g3")  # published while nobody listens
    await post(writer.engine, DM, "d2")
    mend_pubsub(server)
    await until(reader.engine.ready, "reader back")
    await until(lambda: reader.seqs(ROOM) == [1, 2, 3] and reader.seqs(DM) == [1, 2],
                "missed msgs recovered")
    await post(writer.engine, ROOM, "g4")
    await until(lambda: reader.seqs(ROOM) == [1, 2, 3, 4], "live again")


async def test_a_dm_room_first_seen_while_pubsub_was_down_is_recovered(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    reader, writer = await make_node(server.url), await make_node(server.url)
    await reader.engine.subscribe("inbox:samantha")
    await break_pubsub(server)
    await until(lambda: _not(reader.engine.ready()), "reader down")
    new = "dm:samantha:bob"  # never delivered on the reader: not tracked
    await post(writer.engine, new, "first", "second")
    mend_pubsub(server)
    await until(lambda: reader.seqs(new) == [1, 2], "the new room recovered from the inbox log")
    await post(writer.engine, new, "third")
    await until(lambda: reader.seqs(new) == [1, 2, 3], "then live, once")


async def test_recovery_replays_nothing_from_before_the_inbox_or_already_delivered(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    reader, writer = await make_node(server.url), await make_node(server.url)
    old, live, new = "dm:samantha:old", "dm:samantha:live", "dm:samantha:new"
    await post(writer.engine, old, "o1", "o2")  # before samantha was online on the reader
    await reader.engine.subscribe("inbox:samantha")
    await post(writer.engine, live, "l1")
    await until(lambda: reader.seqs(live) == [1], "a live dm msg")
    await break_pubsub(server)
    await until(lambda: _not(reader.engine.ready()), "reader down")
    await post(writer.engine, old, "o3")
    await post(writer.engine, live, "l2")
    await post(writer.engine, new, "n1")
    mend_pubsub(server)
    await until(lambda: len(reader.events) >= 4, "the three missed msgs")
    await asyncio.sleep(0.2)
    assert (reader.seqs(old), reader.seqs(live), reader.seqs(new)) == ([3], [1, 2], [1])


async def test_the_inbox_logs_are_trimmed_and_expire(make_node: MakeNode, redis_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    monkeypatch.setattr(redis_engine, "INBOX_LOG", 10)
    n = await make_node()
    await post(n.engine, "dm:samantha:alice", *(f"m{i}" for i in range(250)))
    with redis.Redis.from_url(redis_url) as r:
        for user in ("samantha", "alice"):
            # MAXLEN ~ drops whole stream nodes (100 entries): about 10, never all 250
            assert 10 <= r.xlen(keys.inbox(user)) <= 110
            assert 0 < r.pttl(keys.inbox(user)) <= INBOX_TTL_MS
        assert not r.exists(keys.inbox("bob"))
        await post(n.engine, ROOM, "a group msg")  # logs nothing
        assert sorted(r.scan_iter(match="os1:inbox:*")) == sorted(
            keys.inbox(u).encode() for u in ("samantha", "alice"))


async def test_missed_beyond_retention_delivers_what_is_left_and_says_so(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    reader = await make_node(server.url, history=3)
    writer = await make_node(server.url, history=3)
    await reader.engine.subscribe(f"room:{ROOM}")
    await post(writer.engine, ROOM, "m1")
    await until(lambda: reader.seqs(ROOM) == [1], "live msg")
    await break_pubsub(server)
    await until(lambda: _not(reader.engine.ready()), "reader down")
    await post(writer.engine, ROOM, *(f"m{i}" for i in range(2, 9)))  # only 6, 7, 8 retained
    with capture_logs() as logs:
        mend_pubsub(server)
        await until(lambda: reader.seqs(ROOM) == [1, 6, 7, 8], "what is left, in order")
    lost = [e for e in logs if e["event"] == "redis_gap_beyond_retention"]
    assert [(e["room"], e["after"], e["lost"]) for e in lost] == [(ROOM, 1, 4)]


async def test_a_failing_listener_does_not_stop_delivery(make_node: MakeNode) -> None:
    n = await make_node()
    seen: list[int] = []

    def flaky(room: str, event: Event) -> None:
        seen.append(event["seq"])
        if event["seq"] == 1:
            raise RuntimeError("listener bug")

    n.engine.set_listener(flaky)
    await n.engine.subscribe(f"room:{ROOM}")
    with capture_logs() as logs:
        await post(n.engine, ROOM, "one", "two")
        await until(lambda: seen == [1, 2], "both delivered")
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["listener_failed"]


# ---- presence across nodes --------------------------------------------------------------

async def test_a_killed_nodes_users_disappear_within_the_bound(make_node: MakeNode,
                                                              redis_url: str) -> None:
    ttl, beat = FAST["node_ttl"], FAST["heartbeat"]
    observer = await make_node()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("redis_node.py")), redis_url, "doomed",
        ROOM, "sam", str(beat), str(ttl), stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        async with asyncio.timeout(WITHIN):
            assert proc.stdout is not None
            assert (await proc.stdout.readline()).strip() == b"ready"
        assert await observer.engine.present(ROOM) == ["sam"]
        await observer.engine.subscribe(f"room:{ROOM}")
        proc.kill()
        killed = time.monotonic()
        await until(lambda: _empty(observer.engine.present(ROOM)), "sam gone")
        # bound: node_ttl after the dead node's last beat, plus one beat of the observer
        assert time.monotonic() - killed <= ttl + 2 * beat + 0.5
        left = {"t": "presence", "room": ROOM, "joined": [], "left": ["sam"]}
        await until(lambda: (ROOM, left) in observer.events, "members told that sam left")
        await asyncio.sleep(0.2)
        assert observer.events == [(ROOM, left)]  # once, although every node reaps
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _empty(v: Awaitable[list[str]]) -> bool:
    return not await v


async def test_a_node_reaped_while_away_marks_its_users_again(make_node: MakeNode,
                                                              redis_url: str) -> None:
    import redis

    # "a" beats once a second, "b" every 50 ms: "b" reaps "a" long before "a" beats again
    a = await make_node(node="a", heartbeat=1.0, node_ttl=5.0)
    b = await make_node(node="b", heartbeat=0.05)
    assert await a.engine.presence_add(ROOM, "sam", "a") is True
    with capture_logs() as logs:
        with redis.Redis.from_url(redis_url) as r:
            r.zadd(keys.NODES, {"a": 0})  # as if "a" had missed its beats
        await until(lambda: _equal(b.engine.present(ROOM), []), "b reaped a")
        await until(lambda: _equal(a.engine.present(ROOM), ["sam"]), "a marked sam again")
    events = [e["event"] for e in logs]
    assert "redis_node_reaped" in events and "redis_node_was_reaped" in events


async def _equal(v: Awaitable[list[str]], want: list[str]) -> bool:
    return await v == want


async def test_close_removes_the_nodes_presence(make_node: MakeNode) -> None:
    a, b = await make_node(), await make_node()
    await a.engine.presence_add(ROOM, "sam", a.engine.node)
    await b.engine.presence_add(ROOM, "ava", b.engine.node)
    await a.engine.close()
    assert await b.engine.present(ROOM) == ["ava"]


# ---- calls queueing for Redis ------------------------------------------------------------

async def test_a_storm_of_calls_waits_for_the_pool_instead_of_failing(make_node: MakeNode) -> None:
    # 4 connections, 0.5 s timeouts: the pool's own wait (0.5 s) would fail most of these
    n = await make_node(pool_size=4)
    users = [f"u{i}" for i in range(1000)]

    async def join(user: str) -> list[str]:
        await n.engine.add_member(ROOM, user)
        await n.engine.presence_add(ROOM, user, n.engine.node)
        return await n.engine.members(ROOM)

    await asyncio.gather(*(join(u) for u in users))
    assert await n.engine.members(ROOM) == sorted(users)
    assert await n.engine.present(ROOM) == sorted(users)


async def test_with_redis_paused_queued_calls_fail_at_once_not_one_timeout_after_another(
        make_node: MakeNode, redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    n = await make_node(server.url, pool_size=4)  # 200 calls: 50 rounds of the 0.5 s timeout
    server.pause()
    try:
        t0 = time.monotonic()
        results = await asyncio.gather(*(n.engine.is_member(ROOM, f"u{i}") for i in range(200)),
                                       return_exceptions=True)
        elapsed = time.monotonic() - t0
    finally:
        server.resume()
    assert all(isinstance(r, ConnectionError) for r in results), results
    assert elapsed < 10 * FAST["timeout"]  # one timeout, then the rest at once (not 25 s)
    await until(lambda: _succeeds(n.engine.is_member(ROOM, "u0")), "calls work again")


async def _succeeds(call: Awaitable[Any]) -> bool:
    try:
        await call
    except ConnectionError:
        return False
    return True
