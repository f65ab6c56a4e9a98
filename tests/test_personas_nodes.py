"""One persona run by two real `os1 serve` nodes on one Redis: each conversation is answered
by exactly one of its workers, and when a node is killed (-9) the survivor takes the dead
worker's conversations over and answers them, none twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
from nodes_util import SECRET, Cluster, Node, cluster

from clients.sdk import Client
from server import auth

__all__ = ["cluster"]  # a fixture, used by name

PEOPLE = 12


async def answers(client: Client, room: str, expected: int, limit: float = 20.0) -> Counter[int]:
    """reply_to -> how many samantha answers, once ``expected`` messages are answered."""
    async with asyncio.timeout(limit):
        while True:
            history = await client.history(room, limit=100)
            got = Counter(m.get("reply_to") for m in history if m["from"]["id"] == "samantha")
            if len(got) >= expected:
                await asyncio.sleep(0.5)  # room for a second answer to show up, if one were coming
                history = await client.history(room, limit=100)
                return Counter(m.get("reply_to") for m in history if m["from"]["id"] == "samantha")
            await asyncio.sleep(0.1)


async def listed_workers(node: Node) -> int:
    token = auth.mint(SECRET, sub="dashboard", role="observer")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(node.base + "/api/personas") as resp:
            body = await resp.json()
    return next(int(p["workers"]) for p in body["personas"] if p["id"] == "samantha")


async def test_two_nodes_share_a_persona_and_the_survivor_takes_over(cluster: Cluster,
                                                                    redis_url: str) -> None:
    env = {"personas": "builtin", "persona_lease": "1", "collective": "off"}
    a, b = await asyncio.gather(cluster.start("a", redis_url, **env), cluster.start("b", redis_url, **env))
    async with asyncio.timeout(10):
        while True:  # both workers' leases, seen from either node
            if await listed_workers(a) == 2:
                break
            await asyncio.sleep(0.1)
    crowd = [await cluster.client(f"p{i}", a) for i in range(PEOPLE)]
    rooms = [f"dm:samantha:p{i}" for i in range(PEOPLE)]
    pairs = list(zip(crowd, rooms, strict=True))
    first = await asyncio.gather(*(c.send(r, "hello, I love gardens") for c, r in pairs))
    for client, room, ack in zip(crowd, rooms, first, strict=True):
        assert await answers(client, room, 1) == {ack["seq"]: 1}

    await b.kill()  # its worker's conversations are orphaned until its lease runs out
    second = await asyncio.gather(*(c.send(r, "are you still there?") for c, r in pairs))
    for client, room, one, two in zip(crowd, rooms, first, second, strict=True):
        assert await answers(client, room, 2) == {one["seq"]: 1, two["seq"]: 1}
    assert await listed_workers(a) == 1
