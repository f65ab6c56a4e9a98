"""A RedisEngine in its own process, for tests that kill a node with SIGKILL.

    python tests/redis_node.py URL NODE ROOM USER HEARTBEAT NODE_TTL

Marks USER present in ROOM from NODE, prints "ready", then idles (at most 60 s).
"""

from __future__ import annotations

import asyncio
import sys

from server.config import Settings
from server.engine.redis import RedisEngine
from server.logs import configure


async def main(url: str, node: str, room: str, user: str, heartbeat: float, ttl: float) -> None:
    configure("console")  # logs to stderr: stdout carries only "ready"
    engine = RedisEngine(Settings(redis_url=url, node=node), heartbeat=heartbeat, node_ttl=ttl)
    await engine.start()
    await engine.presence_add(room, user, node)
    print("ready", flush=True)
    await asyncio.sleep(60)
    await engine.close()


if __name__ == "__main__":
    url, node, room, user, heartbeat, ttl = sys.argv[1:7]
    asyncio.run(main(url, node, room, user, float(heartbeat), float(ttl)))
