"""RedisEngine: several hub nodes share one Redis (or Valkey) as their engine.

A room's log is a Redis Stream whose entry ids are the seqs; appending is one Lua script
(append.lua: cid check, INCR, XADD with retention, cid record, PUBLISH), so seq is gapless
on every node and the hub acks only what Redis stored. Live events go over Pub/Sub
(redis_fanout.py), presence over per-room hashes with node heartbeats (redis_presence.py).
Every key is named in server/keys.py. Messages are msgpack from end to end (append.lua says
why). Needs Redis >= 7 or Valkey (SET NX GET, script effects replication for TIME).

While Redis cannot be reached every call raises the builtin ConnectionError, which the hub
answers with `unavailable`. No call is retried by redis-py: a retried append without cid
could store the message twice. For the same reason `unavailable` on an append means "not
known to be stored" (a timed-out script may still have run): the client resends with the
same cid, and gets the original ack if it was. The hub's calls pass a Gate (redis_gate.py)
first: while Redis answers they queue for a connection (a join storm waits its turn);
once a call found Redis unreachable the others fail at once instead of queueing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import msgpack
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server import keys
from server.config import Settings
from server.engine.base import Append, Appended, Engine, Event, Page
from server.engine.redis_fanout import Fanout
from server.engine.redis_gate import Gate
from server.engine.redis_inbox import INBOX_LOG, INBOX_TTL_MS
from server.engine.redis_presence import Presence, text
from server.errors import Conflict

P = ParamSpec("P")
T = TypeVar("T")
SCRIPTS = Path(__file__).parent
SPARE = 8  # pool connections beyond the gate's slots: heartbeats, reaps, catch-up, probes
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def as_unavailable(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Redis' connection and timeout errors become the builtin ConnectionError the hub
    turns into `unavailable` (redis-py's own classes do not derive from it)."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError) as err:
            raise ConnectionError(f"redis: {err}") from err

    return call


def gated(fn: Callable[Concatenate[RedisEngine, P], Awaitable[T]]
          ) -> Callable[Concatenate[RedisEngine, P], Coroutine[Any, Any, T]]:
    """An engine call that holds one gate slot (so at most one pool connection) throughout,
    and tells the gate whether Redis answered; errors as in `as_unavailable`."""

    @functools.wraps(fn)
    async def call(self: RedisEngine, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            async with self._slot():
                return await fn(self, *args, **kwargs)
        except (*UNREACHABLE, ReadOnlyError) as err:
            raise ConnectionError(f"redis: {err}") from err

    return call


def _digest(text: Any) -> bytes:
    return hashlib.blake2b(str(text).encode(), digest_size=16).hexdigest().encode()


def _on_side(room: str, user: str, *, persona: bool) -> bool:
    kind, _, rest = room.partition(":")
    p, _, h = rest.partition(":")
    return kind == "dm" and (p if persona else h) == user


def _appended(reply: list[Any]) -> Appended | Conflict:
    status, *stored = reply
    if status == b"conflict":
        return Conflict("this cid was already used in this room for a different text")
    return Appended(_decode(stored[0]), duplicate=status == b"dup")


def _decode(data: bytes) -> Event:
    event: Event = msgpack.unpackb(data)
    return event


class RedisEngine(Engine):
    """Settings give redis_url, history, cid_ttl and node; the rest are tuning bounds:

    heartbeat: seconds between liveness beats, and idle time before a Pub/Sub PING
    node_ttl: seconds a node stays alive without beating (presence bound: see Presence)
    timeout: seconds for any Redis command, subscription confirmation or start-up wait
    probe_timeout: seconds ready() waits for its probe to come back through Pub/Sub
    max_rooms: rooms whose last delivered seq this node tracks (Fanout)
    pool_size: the hub's calls running at once, one connection each (SPARE more connections
      serve the engine's own work, one more Pub/Sub)
    queue_wait: seconds a call waits for its turn while Redis answers (below the SDK's 10 s
      request timeout); none while Redis is unreachable
    """

    name = "redis"
    pipelines = True

    def __init__(self, settings: Settings, *, heartbeat: float = 1.0, node_ttl: float = 5.0,
                 timeout: float = 2.0, probe_timeout: float = 1.0, max_rooms: int = 100_000,
                 pool_size: int = 64, queue_wait: float = 8.0) -> None:
        super().__init__()
        self._closed = False
        self._epoch_loaded = False  # until then `epoch` is base's random one
        if not settings.redis_url:
            raise ValueError("RedisEngine needs settings.redis_url")
        self.history = settings.history
        self.cid_ttl_ms = max(1, round(settings.cid_ttl * 1000))
        self.node = settings.node or f"{socket.gethostname()}-{os.getpid()}"
        self._gate = Gate(pool_size, queue_wait)
        pool = BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=pool_size + SPARE, timeout=timeout,
            socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), protocol=2)
        self._redis = Redis(connection_pool=pool)
        self._append = self._redis.register_script((SCRIPTS / "append.lua").read_text())
        self._read = self._redis.register_script((SCRIPTS / "read.lua").read_text())
        self._members = self._redis.register_script((SCRIPTS / "members.lua").read_text())
        self._fanout = Fanout(self._redis, node=self.node, emit=self._emit, fetch=self._pages,
                              admit=self._slot, connected=self._load_epoch, ping=heartbeat,
                              timeout=timeout, probe_timeout=probe_timeout, max_rooms=max_rooms)
        self._presence = Presence(self._redis, node=self.node, heartbeat=heartbeat,
                                  node_ttl=node_ttl, timeout=timeout)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A gate slot for the Redis commands inside; tells the gate whether Redis answered."""
        gate = self._gate
        await gate.acquire()
        try:
            yield
        except UNREACHABLE:
            gate.failed()
            raise
        finally:
            gate.release()
        gate.succeeded()

    async def start(self) -> None:
        self._closed = False
        await self._fanout.start()
        await self._presence.start()

    async def _load_epoch(self) -> bool:
        """Share one epoch between nodes: the store's, kept in Redis. A Redis that lost its
        data has none, so the first node back makes a new one; True when it changed."""
        mine = uuid.uuid4().hex[:12]
        old = await self._redis.set(keys.EPOCH, mine, nx=True, get=True)
        epoch = text(old) if isinstance(old, bytes | str) else mine
        changed = self._epoch_loaded and epoch != self.epoch
        self.epoch, self._epoch_loaded = epoch, True
        return changed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._presence.close()
        await self._fanout.close()
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()

    async def ready(self) -> bool:
        return await self._fanout.probe()

    @as_unavailable  # its Redis commands take a gate slot each (Fanout: admit), not the wait
    async def subscribe(self, channel: str) -> None:
        await self._fanout.subscribe(channel)

    @as_unavailable  # no connection of the pool; and a node must let go even when Redis is away
    async def unsubscribe(self, channel: str) -> None:
        await self._fanout.unsubscribe(channel)

    # ---- the log --------------------------------------------------------------------------

    @gated
    async def append(self, room: str, msg: Event, *, sender: str, cid: str | None) -> Appended:
        done = _appended(await self._append(**self._append_call(room, msg, sender, cid)))
        if isinstance(done, Conflict):
            raise done
        return done

    @gated
    async def append_many(self, items: Sequence[Append]) -> list[Appended | Conflict]:
        """One pipeline (one round trip, one pool connection): Redis runs the scripts in
        order, so a sender's msgs keep their order, and their PUBLISHes arrive together."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, msg, sender, cid in items:
                await self._append(**self._append_call(room, msg, sender, cid), client=pipe)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply  # a connection error is translated by @gated; anything else is a bug
        return [_appended(reply) for reply in replies]

    def _append_call(self, room: str, msg: Event, sender: str, cid: str | None) -> dict[str, Any]:
        body = msgpack.packb({**msg, "mid": uuid.uuid4().hex})
        room_keys = [keys.seq(room), keys.log(room)]
        if cid is not None:
            room_keys.append(keys.cid(room, sender, cid))
        inboxes = [keys.inbox(user) for user in keys.dm_sides(room)]
        args = [body, self.history, keys.channel(room), _digest(msg.get("text")), self.cid_ttl_ms,
                len(inboxes), room, INBOX_LOG, INBOX_TTL_MS]
        return {"keys": room_keys + inboxes, "args": args}

    @gated
    async def read_after(self, room: str, after: int, limit: int) -> Page:
        return self._page(await self._read(keys=[keys.seq(room), keys.log(room)],
                                           args=["after", after, limit, self.history]))

    @gated
    async def read_before(self, room: str, before: int | None, limit: int) -> list[Event]:
        bound = "" if before is None else before
        reply = await self._read(keys=[keys.seq(room), keys.log(room)],
                                 args=["before", bound, limit, self.history])
        return self._page(reply).msgs[::-1]

    @gated
    async def inbox(self, user: str, *, persona: bool, limit: int) -> list[Event]:
        """From the user's inbox log (newest first; both sides of its dm rooms are in it):
        what the log still holds, ~INBOX_LOG entries and a day."""
        entries: list[Any] = await self._redis.xrevrange(
            keys.inbox(user), count=min(INBOX_LOG, limit * 20)) or []
        out: dict[str, Event] = {}
        for entry_id, fields in entries:
            room = text(fields[b"r"])
            if room in out or not _on_side(room, user, persona=persona):
                continue
            out[room] = {"room": room, "seq": int(fields[b"s"]), "ts": int(text(entry_id).split("-")[0])}
            if len(out) >= limit:
                break
        return list(out.values())

    async def _pages(self, rooms: list[tuple[str, int]]) -> list[Page]:
        """Everything retained after each (room, seq), in one round trip (for Fanout)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, after in rooms:
                await self._read(keys=[keys.seq(room), keys.log(room)],
                                 args=["after", after, self.history, self.history], client=pipe)
            replies = await pipe.execute()
        return [self._page(r) for r in replies]

    @staticmethod
    def _page(reply: list[Any]) -> Page:
        last, first, *msgs = reply
        return Page([_decode(m) for m in msgs], int(first), int(last))

    # ---- ephemeral events -----------------------------------------------------------------

    @gated
    async def publish(self, room: str, event: Event) -> None:
        await self._redis.publish(keys.channel(room), msgpack.packb(event))

    @gated
    async def notify(self, user: str, event: Event) -> None:
        await self._redis.publish(keys.user_channel(user), msgpack.packb(event))

    # ---- rooms and members ----------------------------------------------------------------

    @gated
    async def create_room(self, room: str) -> bool:
        return bool(await self._redis.sadd(keys.ROOMS, room))

    @gated
    async def room_exists(self, room: str) -> bool:
        return bool(await self._redis.sismember(keys.ROOMS, room))

    @gated
    async def rooms(self, kind: str, limit: int) -> list[str]:
        # SSCAN, not SMEMBERS: the set may be large; stop once `limit` matched.
        found: list[str] = []
        async for raw in self._redis.sscan_iter(keys.ROOMS, match=f"{kind}:*", count=500):
            found.append(raw.decode() if isinstance(raw, bytes) else str(raw))
            if len(found) >= limit:
                break
        return sorted(found)

    @gated
    async def add_member(self, room: str, user: str) -> None:
        await self._redis.sadd(keys.members(room), user)

    @gated
    async def remove_member(self, room: str, user: str) -> None:
        await self._redis.srem(keys.members(room), user)

    @gated
    async def is_member(self, room: str, user: str) -> bool:
        return bool(await self._redis.sismember(keys.members(room), user))

    @gated
    async def members(self, room: str) -> list[str]:
        joined = text(await self._members(keys=[keys.members(room)]))
        return sorted(joined.split("\n")) if joined else []

    # ---- presence -------------------------------------------------------------------------

    @gated
    async def presence_add(self, room: str, user: str, node: str) -> bool:
        return await self._presence.add(room, user, node)

    @gated
    async def presence_remove(self, room: str, user: str, node: str) -> bool:
        return await self._presence.remove(room, user, node)

    @gated
    async def present(self, room: str) -> list[str]:
        return await self._presence.present(room)

    # ---- revocation -----------------------------------------------------------------------

    @gated
    async def revoke(self, user: str, upto: int) -> None:
        await self._redis.zadd(keys.REVOKED, {user: upto}, gt=True)

    @gated
    async def revoked_upto(self, user: str) -> int:
        score = await self._redis.zscore(keys.REVOKED, user)
        return 0 if score is None else int(score)
