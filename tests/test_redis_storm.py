"""A join storm on one Redis-mode node (a real `os1 serve` process, real sockets): 1,000
connections send `join` at once, then `send` at once, and every one is served — none gets
`unavailable` while Redis is healthy. Each join reads its room's whole member list (seeded
to 1,000 members, the measured case in docs/performance.md) and takes several round trips,
so the calls far outnumber the node's Redis connections: they must queue, not fail."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import orjson
import redis
from nodes_util import SECRET, Cluster, cluster

from server import auth, keys

__all__ = ["cluster"]  # a fixture, used by name

CLIENTS = 1000
ROOMS = 10  # 100 online per room: presence events stay ~50k frames, not 500k
SEEDED = 1000  # offline members per room: every join reads > 1,000 ids
WAVE = 100  # connections opened at once (the storm under test is the joins, not handshakes)
WITHIN = 60.0  # bound of each phase; the node needs a few seconds on an idle machine


def room_of(i: int) -> str:
    return f"group:storm{i % ROOMS}"


async def request(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> dict[str, Any]:
    """Send `frame`, return the reply to it (presence events in between are skipped)."""
    await ws.send_str(orjson.dumps(frame).decode())
    while True:
        msg = await ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return {"t": "closed", "code": ws.close_code}
        reply: dict[str, Any] = orjson.loads(msg.data)
        if reply.get("re") == frame["id"]:
            return reply


def outcome(replies: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["code"] if r["t"] == "error" else r["t"] for r in replies)


async def test_a_thousand_concurrent_joins_and_sends_are_all_served(cluster: Cluster,
                                                                    redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as r:
        for n in range(ROOMS):
            room = f"group:storm{n}"
            r.sadd(keys.ROOMS, room)
            r.sadd(keys.members(room), *(f"offline{i}" for i in range(SEEDED)))
    node = await cluster.start("storm", redis_url)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async def connect(i: int) -> aiohttp.ClientWebSocketResponse:
            token = auth.mint(SECRET, sub=f"u{i}", role="human", name=f"U{i}")
            ws = await http.ws_connect(node.url, headers={"Authorization": f"Bearer {token}"})
            welcome = orjson.loads((await ws.receive()).data)
            assert welcome["t"] == "welcome", welcome
            return ws

        conns: list[aiohttp.ClientWebSocketResponse] = []
        try:
            async with asyncio.timeout(WITHIN):
                for start in range(0, CLIENTS, WAVE):
                    conns += await asyncio.gather(*(connect(i) for i in
                                                    range(start, min(CLIENTS, start + WAVE))))
            async with asyncio.timeout(WITHIN):
                joined = await asyncio.gather(*(
                    request(ws, {"t": "join", "id": "j", "room": room_of(i)})
                    for i, ws in enumerate(conns)))
            assert outcome(joined) == {"joined": CLIENTS}
            assert all(len(j["members"]) > SEEDED for j in joined)
            async with asyncio.timeout(WITHIN):  # each into its own dm: one delivery each
                acked = await asyncio.gather(*(
                    request(ws, {"t": "send", "id": "s", "room": "dm:samantha", "text": "hi"})
                    for ws in conns))
            assert outcome(acked) == {"ack": CLIENTS}
            assert {a["seq"] for a in acked} == {1}
        finally:
            async with asyncio.timeout(WITHIN):
                await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
