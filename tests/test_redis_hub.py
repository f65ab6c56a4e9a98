"""Two hub nodes (two apps, two ports) on one Redis act as one hub: clients on different
nodes in one room see the same messages with the same seq."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from conftest import HubServer, make_settings, start_hub
from wire import Clients, Wire, join, send

Pair = tuple[Clients, Clients]


@pytest.fixture
async def nodes(redis_hub: Callable[..., Any]) -> AsyncIterator[Pair]:
    """Raw clients of node n1 and of node n2."""
    n1: HubServer = await redis_hub("n1")
    n2: HubServer = await redis_hub("n2")
    async with Clients(n1.url, n1.token) as c1, Clients(n2.url, n2.token) as c2:
        yield c1, c2


def seen(frames: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(f["seq"], f["mid"], f["text"]) for f in frames]


async def test_both_nodes_run_the_redis_engine_and_are_ready(redis_hub: Callable[..., Any]) -> None:
    for node in ("n1", "n2"):
        server: HubServer = await redis_hub(node)
        async with aiohttp.ClientSession() as http, http.get(server.base + "/readyz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"ready": True, "engine": "redis", "draining": False}


async def test_a_group_room_across_nodes_has_one_order(nodes: Pair) -> None:
    c1, c2 = nodes
    alice = await c1.login("human", "alice")
    bob = await c2.login("human", "bob")
    assert alice.welcome and alice.welcome["server"]["node"] == "n1"
    assert bob.welcome and bob.welcome["server"]["engine"] == "redis"
    # one store: a client moving to the other node keeps its seqs
    assert alice.welcome["server"]["epoch"] == bob.welcome["server"]["epoch"]
    await join(alice, "group:g", create=True)
    await join(bob, "group:g")

    async def talk(w: Wire, who: str) -> None:
        for i in range(20):
            await send(w, "group:g", f"{who}{i}")

    await asyncio.gather(talk(alice, "a"), talk(bob, "b"))
    got_a = await alice.collect("msg", 40)
    got_b = await bob.collect("msg", 40)
    assert seen(got_a) == seen(got_b)
    assert [f["seq"] for f in got_a] == list(range(1, 41))
    await alice.quiet("msg", 0.2)  # and nothing twice


async def test_dm_between_a_persona_and_a_human_on_other_nodes(nodes: Pair) -> None:
    c1, c2 = nodes
    sam = await c1.login("persona", "samantha")
    alice = await c2.login("human", "alice")
    ask = await send(alice, "dm:samantha", "hello", cid="q1")
    heard = await sam.recv_until({"t": "msg", "mid": ask["mid"]})
    assert heard["seq"] == 1 and heard["room"] == "dm:samantha:alice"
    answer = await send(sam, "dm:samantha:alice", "hi alice")
    for w in (alice, sam):
        assert (await w.recv_until({"t": "msg", "mid": answer["mid"]}))["seq"] == 2
    # a retry of the same cid from alice's connection to the other node: the same message
    alice_on_n1 = await c1.login("human", "alice")
    again = await send(alice_on_n1, "dm:samantha", "hello", cid="q1")
    assert again.get("duplicate") is True and again["seq"] == 1 and again["mid"] == ask["mid"]
    await sam.quiet("msg", 0.2)


async def test_join_since_replays_what_another_node_stored(nodes: Pair) -> None:
    c1, c2 = nodes
    alice = await c1.login("human", "alice")
    await join(alice, "group:g", create=True)
    acks = [await send(alice, "group:g", f"m{i}") for i in range(5)]
    bob = await c2.login("human", "bob")
    joined = await join(bob, "group:g", since=2)
    assert joined["seq"] == 5 and joined["replayed"] == 3 and joined["gap"] is False
    replay = await bob.collect("msg", 3)
    assert [(f["seq"], f["mid"]) for f in replay] == [(a["seq"], a["mid"]) for a in acks[2:]]


async def test_presence_crosses_nodes(nodes: Pair) -> None:
    c1, c2 = nodes
    alice = await c1.login("human", "alice")
    bob = await c2.login("human", "bob")
    await join(alice, "group:p", create=True)
    await join(bob, "group:p")
    assert await alice.recv_until({"t": "presence", "joined": ["bob"]})
    await bob.request({"t": "leave", "room": "group:p"})
    assert await alice.recv_until({"t": "presence", "left": ["bob"]})


async def test_redis_down_means_unavailable_and_not_ready_then_back(
        tmp_path: Any, redis_factory: Callable[..., Any]) -> None:
    server = redis_factory(appendonly=True)
    hub = await start_hub(make_settings(tmp_path, redis_url=server.url, node="n1"))
    try:
        async with Clients(hub.url, hub.token) as c, aiohttp.ClientSession() as http:
            alice = await c.login("human", "alice")
            await join(alice, "group:g", create=True)
            assert (await send(alice, "group:g", "one"))["seq"] == 1
            server.stop()
            err = await alice.request({"t": "send", "room": "group:g", "text": "two", "cid": "c2"})
            assert err["t"] == "error" and err["code"] == "unavailable", err  # never a fake ack
            async with http.get(hub.base + "/readyz") as resp:
                assert resp.status == 503
            server.start()
            await eventually_ready(http, hub.base)
            again = await send(alice, "group:g", "two", cid="c2")  # the client's retry
            assert again["seq"] == 2 and "duplicate" not in again
            assert [m["seq"] for m in await alice.collect("msg", 2)] == [1, 2]
    finally:
        await hub.stop()


async def eventually_ready(http: aiohttp.ClientSession, base: str, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            async with http.get(base + "/readyz") as resp:
                if resp.status == 200:
                    return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_one_connection_pipelines_its_sends_in_order(redis_hub: Callable[..., Any],
                                                           fmt: Any) -> None:
    """Sends do not wait for each other's round trip to Redis, yet the order holds: acks in
    request order with seqs in that order, an error in its place, and a request after the
    sends (history) sees all of them. More than a window's worth: the reading pauses."""
    server: HubServer = await redis_hub("n1", rate_limit=10_000.0, rate_burst=10_000)
    async with Clients(server.url, server.token) as clients:
        alice = await clients.login("human", "alice", fmt=fmt)
        await join(alice, "group:fast", create=True)
        frames: list[dict[str, Any]] = []
        for i in range(600):
            if i == 300:
                frames.append({"t": "history", "id": "h", "room": "group:fast", "limit": 100})
            room = "group:nowhere" if i == 450 else "group:fast"  # not joined: refused
            cid = "c10" if i == 500 else f"c{i}"  # c10 again, another text: a conflict
            frames.append({"t": "send", "id": i, "room": room, "text": f"m{i}", "cid": cid})
        for frame in frames:
            await alice.send(frame)
        replies = await alice.collect(lambda f: "re" in f, len(frames), within=30)
        assert [f["re"] for f in replies] == [f["id"] for f in frames]  # in request order
        acks = [f for f in replies if f["t"] == "ack"]
        assert [a["seq"] for a in acks] == list(range(1, 599))
        refused = next(f for f in replies if f["re"] == 450)
        assert refused["t"] == "error" and refused["code"] in ("forbidden", "not_found")
        assert next(f for f in replies if f["re"] == 500)["code"] == "conflict"
        history = next(f for f in replies if f["re"] == "h")
        assert [m["text"] for m in history["msgs"]] == [f"m{i}" for i in range(200, 300)]
        msgs = await alice.collect("msg", 598, within=30)
        assert [m["seq"] for m in msgs] == list(range(1, 599))
