"""Presence across hub nodes for the Redis engine, and the node liveness behind it.

Each room keeps who is present from which node (presence.lua, atomic per room). Each node
beats every `heartbeat` seconds: it pushes its deadline (now + `node_ttl`, Redis clock) in
the `os1:nodes` zset and reaps nodes whose deadline passed, using the per-node index of what
they marked present. Bound: a dead node's users are gone from `present()` at most
`node_ttl + heartbeat` (+ one reap) after its last beat, as long as one node is alive; a node
starting later reaps them at its first beat.

The reaper also tells the survivors: each reaped user now present nowhere in a room gets a
`presence` event with `left` on the room's channel, published by presence.lua in the same
step that made the user absent (so once, whichever node reaped). Members on every node see a
dead node's users leave, as if they had left one by one.

A node that could not reach Redis for longer than `node_ttl` is reaped like a dead one; its
next beat finds itself unregistered and marks its own present users again, with `joined`
events. Node names must be unique among running nodes: a node starting clears what an
earlier process of the same name left behind (and says they left).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from server import keys
from server.engine.tasks import stop

log = structlog.get_logger("os1.engine.redis")

MAX_DEAD = 16  # dead nodes reaped per beat; more wait for the next beat
BATCH = 512  # presence entries removed per pipeline while reaping
SCRIPTS = Path(__file__).parent


def text(value: bytes | str) -> str:
    """A Redis reply as str (the client is not set to decode replies: msgs are bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def _event(room: str, user: str, *, joined: bool) -> list[bytes | str]:
    """presence.lua's optional arguments: the hub's presence event and where it goes."""
    event = {"t": "presence", "room": room, "joined": [user] if joined else [],
             "left": [] if joined else [user]}
    return [msgpack.packb(event), keys.channel(room)]


class Presence:
    def __init__(self, client: Redis, *, node: str, heartbeat: float, node_ttl: float,
                 timeout: float) -> None:
        self._client = client
        self.node = node
        self.heartbeat = heartbeat
        self.node_ttl = node_ttl
        self.timeout = timeout
        self._script = client.register_script((SCRIPTS / "presence.lua").read_text())
        self._beat_script = client.register_script((SCRIPTS / "heartbeat.lua").read_text())
        self._mine: set[tuple[str, str]] = set()  # (room, user) this node marked present
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.reap(self.node)  # what an earlier process of this name left
                await self.beat()
        except (TimeoutError, RedisError, OSError) as err:
            log.warning("redis_heartbeat_failed", error=repr(err))
        self._task = asyncio.create_task(self._loop(), name="os1-redis-heartbeat")

    async def close(self) -> None:
        """Stop beating; leave as a clean node: drop this node's presence and liveness."""
        if self._task is not None:
            if not await stop(self._task, within=self.timeout):
                log.error("redis_heartbeat_did_not_stop")
            self._task = None
        try:
            async with asyncio.timeout(self.timeout):
                await self.reap(self.node)
        except (TimeoutError, RedisError, OSError) as err:
            log.warning("redis_leave_failed", error=repr(err))  # the others reap us in time

    # ---- presence -------------------------------------------------------------------------

    async def add(self, room: str, user: str, node: str) -> bool:
        # Index first: if this node dies between the two writes, a reaper finds nothing to
        # undo rather than leaving an entry no index points to. One round trip: Redis runs a
        # pipeline's commands in order.
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.sadd(keys.node_presence(node), f"{room}\n{user}")
            await self._run(room, "add", user, node, client=pipe)
            _, fresh = await pipe.execute()
        if node == self.node:
            self._mine.add((room, user))
        return bool(fresh)

    async def remove(self, room: str, user: str, node: str) -> bool:
        if node == self.node:
            self._mine.discard((room, user))
        async with self._client.pipeline(transaction=False) as pipe:
            await self._run(room, "remove", user, node, client=pipe)
            pipe.srem(keys.node_presence(node), f"{room}\n{user}")
            gone, _ = await pipe.execute()
        return bool(gone)

    async def present(self, room: str) -> list[str]:
        users = await self._client.hkeys(keys.presence_count(room))
        return sorted(text(u) for u in users)

    async def _run(self, room: str, op: str, user: str, node: str, *, client: Pipeline,
                   event: list[bytes | str] | None = None) -> None:
        """Queue presence.lua on `client`; with `event`, Redis publishes it on a transition."""
        keys_ = [keys.presence_where(room), keys.presence_count(room)]
        await self._script(keys=keys_, args=[op, user, node, *(event or [])], client=client)

    # ---- liveness -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:  # until close() cancels it
            await asyncio.sleep(self.heartbeat)
            try:
                async with asyncio.timeout(self.timeout):
                    await self.beat()
            except (TimeoutError, RedisError, OSError) as err:
                log.warning("redis_heartbeat_failed", error=repr(err))
            except Exception:  # a bug must not stop the beats: the node would look dead
                log.exception("redis_heartbeat_failed")

    async def beat(self) -> None:
        ttl_ms = max(1, round(self.node_ttl * 1000))
        registered, *dead = await self._beat_script(keys=[keys.NODES],
                                                    args=[self.node, ttl_ms, MAX_DEAD])
        if registered and self._mine:
            log.warning("redis_node_was_reaped", present=len(self._mine))
            await self._reassert()
        for name in dead:
            if name.decode() != self.node:
                await self.reap(name.decode())

    async def _reassert(self) -> None:
        mine = list(self._mine)
        for i in range(0, len(mine), BATCH):
            async with self._client.pipeline(transaction=False) as pipe:
                for room, user in mine[i : i + BATCH]:
                    pipe.sadd(keys.node_presence(self.node), f"{room}\n{user}")
                    await self._run(room, "add", user, self.node, client=pipe,
                                    event=_event(room, user, joined=True))
                await pipe.execute()

    async def reap(self, node: str) -> None:
        """Remove every presence entry of `node`, then its liveness record."""
        lock, lock_ms = keys.reap_lock(node), max(1, round(self.timeout * 1000))
        if not await self._client.set(lock, self.node, nx=True, px=lock_ms):
            return  # another node is at it (the lock expires if that node dies meanwhile)
        try:
            await self._reap(node)
        finally:
            await self._client.delete(lock)

    async def _reap(self, node: str) -> None:
        index = keys.node_presence(node)
        entries = [text(e).split("\n", 1) for e in await self._client.smembers(index)]
        gone = 0
        for i in range(0, len(entries), BATCH):
            async with self._client.pipeline(transaction=False) as pipe:
                for room, user in entries[i : i + BATCH]:
                    await self._run(room, "remove", user, node, client=pipe,
                                    event=_event(room, user, joined=False))
                left = await pipe.execute()
                gone += sum(map(bool, left))
        await self._client.delete(index)
        await self._client.zrem(keys.NODES, node)
        if node != self.node:
            log.info("redis_node_reaped", dead_node=node, entries=len(entries), left=gone)
