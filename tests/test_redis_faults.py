"""Faults under traffic, with real `os1 serve` processes and a real Redis: a node killed
with SIGKILL, Redis killed and restarted from its AOF, Redis paused longer than every
timeout, a node paused. Each run ends with zero lost and zero duplicated acked messages,
checked by seq and cid (nodes_util.verify), on every client that stayed in the room.
Also: a killed node's members are seen leaving, and a dm room whose first msg was sent
while the nodes' Pub/Sub reconnected reaches the persona."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import redis
from nodes_util import ROOM, Cluster, Ledger, Node, Seen, cluster, read_log, verify

from clients.sdk import Client

__all__ = ["cluster"]  # a fixture, used by name

LIVENESS = 20.0  # > the nodes' 5 s liveness TTL + 1 s beat + reaping, with room for a busy box
REDIS_PAUSE = 3.0  # > the engine's 2 s command timeout and its 2 x 1 s Pub/Sub ping bound
NODE_PAUSE = 2.0  # < the clients' 5 s request timeout and the 5 s node liveness TTL


async def room_of(cluster: Cluster, specs: list[tuple[str, Node, list[Node]]]
                  ) -> tuple[list[Client], list[Seen]]:
    """Clients (name, node, fail-over nodes) joined to ROOM before any traffic."""
    clients = [await cluster.client(name, node, *others) for name, node, others in specs]
    for client in clients:
        await client.join(ROOM, since=0, create=True)
    return clients, [Seen(c, ROOM) for c in clients]


async def test_kill_9_a_node_while_its_clients_send(cluster: Cluster, redis_url: str) -> None:
    fast = {"rate_limit": "5000", "rate_burst": "5000"}  # senders on a never pause: one
    a, b = await asyncio.gather(cluster.start("a", redis_url, **fast),  # send is always in
                                cluster.start("b", redis_url, **fast))  # flight at the kill
    clients, seen = await room_of(cluster, [("a0", a, [b]), ("a1", a, [b]), ("b0", b, [a]),
                                            ("reader", b, [])])
    ledger = Ledger(ROOM)
    traffic = asyncio.gather(ledger.send_all(clients[0], "a0", 150, pause=0),
                             ledger.send_all(clients[1], "a1", 150, pause=0),
                             ledger.send_all(clients[2], "b0", 60))
    await ledger.reach(60)
    await a.kill()
    await traffic
    for moved in seen[:2]:  # resumed on b with since: their seen msgs are checked below
        assert moved.reconnects and moved.client.url == b.url
    await verify(ledger, await read_log(await cluster.client("auditor", b)), seen)


async def test_redis_killed_and_restarted_from_its_aof(cluster: Cluster,
                                                       redis_factory: Callable[..., Any]) -> None:
    redis = redis_factory(appendonly=True)  # appendfsync always: an ack is on disk
    a, b = await asyncio.gather(cluster.start("a", redis.url), cluster.start("b", redis.url))
    clients, seen = await room_of(cluster, [("a0", a, [b]), ("b0", b, [a]), ("reader", b, [])])
    ledger = Ledger(ROOM)
    traffic = asyncio.gather(ledger.send_all(clients[0], "a0", 80),
                             ledger.send_all(clients[1], "b0", 80))
    await ledger.reach(20)
    await asyncio.to_thread(redis.kill)  # SIGKILL: no shutdown, only what the AOF holds
    await asyncio.sleep(0.5)
    await asyncio.to_thread(redis.start)
    await traffic
    assert ledger.retries["unavailable"] > 0, "the outage was not felt"
    await verify(ledger, await read_log(await cluster.client("auditor", a)), seen)
    assert not any(r.get("reset") for s in seen for e in s.reconnects
                   for r in e["rooms"].values()), "the store's epoch changed"


async def test_redis_paused_longer_than_every_timeout(cluster: Cluster,
                                                      redis_factory: Callable[..., Any]) -> None:
    redis = redis_factory()
    a, b = await asyncio.gather(cluster.start("a", redis.url), cluster.start("b", redis.url))
    clients, seen = await room_of(cluster, [("a0", a, [b]), ("b0", b, [a]), ("reader", b, [])])
    ledger = Ledger(ROOM)
    traffic = asyncio.gather(ledger.send_all(clients[0], "a0", 80),
                             ledger.send_all(clients[1], "b0", 80))
    await ledger.reach(20)
    redis.pause()
    try:
        await asyncio.sleep(REDIS_PAUSE - 1.5)
        async with aiohttp.ClientSession() as http, http.get(a.base + "/readyz") as resp:
            assert resp.status == 503  # the publish->subscribe probe cannot come back
        await asyncio.sleep(1.5)
    finally:
        redis.resume()
    await traffic
    assert ledger.retries["unavailable"] + ledger.retries["timeout"] > 0, "the pause was not felt"
    await verify(ledger, await read_log(await cluster.client("auditor", a)), seen)


async def test_a_paused_node_stalls_only_its_own_clients(cluster: Cluster, redis_url: str) -> None:
    a, b = await asyncio.gather(cluster.start("a", redis_url), cluster.start("b", redis_url))
    clients, seen = await room_of(cluster, [("a0", a, [b]), ("b0", b, [a]), ("reader", b, [])])
    ledger = Ledger(ROOM)
    traffic = asyncio.gather(ledger.send_all(clients[0], "a0", 60),
                             ledger.send_all(clients[1], "b0", 200))
    await ledger.reach(20)
    loop = asyncio.get_running_loop()
    a.pause()
    paused_at = loop.time()
    try:
        await asyncio.sleep(NODE_PAUSE)
    finally:
        a.resume()
    resumed_at = loop.time()
    await traffic

    def acks_while_paused(who: str) -> int:
        return sum(paused_at + 0.2 < t < resumed_at for cid, t in ledger.acked_at.items()
                   if cid.startswith(who))

    assert acks_while_paused("b0-") >= 20, "node b did not keep working"
    assert acks_while_paused("a0-") == 0, "node a was not paused"
    await verify(ledger, await read_log(await cluster.client("auditor", a)), seen)


async def test_a_new_dm_during_a_pubsub_reconnect_reaches_the_persona(
        cluster: Cluster, redis_factory: Callable[..., Any]) -> None:
    server = redis_factory()  # its own: the test changes the default user's rights
    a, b = await asyncio.gather(cluster.start("a", server.url), cluster.start("b", server.url))
    sam = await cluster.client("samantha", a, role="persona")
    bob = await cluster.client("bob", b)
    with redis.Redis.from_url(server.url) as admin:
        # Every node's Pub/Sub connection drops and may not come back before the msg is
        # stored: it is sent during the reconnect, whatever the timing.
        admin.execute_command("ACL", "SETUSER", "default", "-subscribe", "-psubscribe")
        admin.client_kill_filter(_type="pubsub")
        try:
            ack = await bob.send("dm:samantha", "the first message of a new conversation")
        finally:
            admin.execute_command("ACL", "SETUSER", "default", "+@all")
    async with asyncio.timeout(10):  # the nodes reconnect within ~1 s of the mend
        while (event := await sam.next_event())["t"] != "msg":
            pass
    assert (event["room"], event["seq"]) == (ack["room"], ack["seq"])


async def _presence(client: Client, room: str, left: str) -> dict[str, Any]:
    async with asyncio.timeout(LIVENESS):
        while True:
            event = await client.next_event()
            if event["t"] == "presence" and event["room"] == room and left in event["left"]:
                return event


async def test_a_killed_nodes_members_are_seen_leaving(cluster: Cluster, redis_url: str) -> None:
    a, b = await asyncio.gather(cluster.start("a", redis_url), cluster.start("b", redis_url))
    alice = await cluster.client("alice", a)
    await cluster.client("samantha", a, role="persona")  # present in collective:all
    bob = await cluster.client("bob", b)
    ava = await cluster.client("ava", b, role="persona")
    await alice.join(ROOM, since=0, create=True)
    await bob.join(ROOM, since=0)
    assert sorted((await ava.join("collective:all"))["members"]) == ["ava", "samantha"]
    await a.kill()  # no goodbye: only the liveness record can tell
    assert await _presence(bob, ROOM, "alice") == {
        "t": "presence", "room": ROOM, "joined": [], "left": ["alice"]}
    await _presence(ava, "collective:all", "samantha")
    # the dead node's persona is gone for newcomers too (members of collective:all = present)
    eve = await cluster.client("eve", b, role="persona")
    assert sorted((await eve.join("collective:all"))["members"]) == ["ava", "eve"]
