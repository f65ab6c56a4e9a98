"""Two and three real `os1 serve` processes on one Redis act as one hub: clients on
different nodes in one room see the same messages with the same seq, and a persona run by
one node answers a person connected to another."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from nodes_util import ROOM, Cluster, Ledger, Seen, cluster, read_log, verify

__all__ = ["cluster"]  # a fixture, used by name


@pytest.mark.parametrize("count", [2, 3])
async def test_clients_on_every_node_see_one_order(cluster: Cluster, redis_url: str,
                                                   count: int) -> None:
    nodes = await asyncio.gather(*(cluster.start(f"n{i}", redis_url) for i in range(count)))
    people = [await cluster.client(f"p{i}", node) for i, node in enumerate(nodes)]
    for person in people:
        await person.join(ROOM, since=0, create=True)
    assert {p.welcome["server"]["node"] for p in people if p.welcome} == {n.name for n in nodes}
    assert len({p.welcome["server"]["epoch"] for p in people if p.welcome}) == 1  # one store
    seen = [Seen(p, ROOM) for p in people]
    ledger = Ledger(ROOM)
    await asyncio.gather(*(ledger.send_all(p, f"p{i}", 20, pause=0.005)
                           for i, p in enumerate(people)))
    assert sorted(ledger.acked.values()) == list(range(1, 20 * count + 1))
    await verify(ledger, await read_log(await cluster.client("auditor", nodes[-1])), seen)
    async with aiohttp.ClientSession() as http:
        for node in nodes:
            async with http.get(node.base + "/readyz") as resp:
                assert (await resp.json())["engine"] == "redis"


async def test_a_persona_on_one_node_answers_a_person_on_another(cluster: Cluster,
                                                                 redis_url: str) -> None:
    a = await cluster.start("a", redis_url, personas="builtin")  # samantha runs here
    b = await cluster.start("b", redis_url)
    alice = await cluster.client("alice", b)
    room = (await alice.join("dm:samantha", since=0))["room"]
    ack = await alice.send(room, "Hi, my name is Alice.")
    async with asyncio.timeout(15):
        async for event in alice:
            if event["t"] == "msg" and event["from"]["id"] == "samantha":
                break
    assert event["room"] == room and event["seq"] > ack["seq"] and "Alice" in event["text"]
    # the same conversation, read from the persona's node
    alice_on_a = await cluster.client("alice", a)
    log = await read_log(alice_on_a, room)
    assert [(m["seq"], m["mid"]) for m in log if m["seq"] in (ack["seq"], event["seq"])] == \
        [(ack["seq"], ack["mid"]), (event["seq"], event["mid"])]
