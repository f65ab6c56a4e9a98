"""Live fan-out of the Redis engine: one Pub/Sub connection per node, read by one task.

What the listener gets, and why it holds:

- Each event once per node, although a node's subscriptions overlap (inbox:samantha and
  inbox:alice both match dm:samantha:alice; Redis then sends one copy per matching
  subscription). A copy is delivered only when it arrived on the first subscription, in a
  fixed order (`subs_matching`), among those Redis has confirmed. The confirmed set is
  updated from the (p)subscribe replies read off the same connection, and Redis writes
  all copies of one PUBLISH before any later reply, so it is exactly the set Redis fanned
  out to: no per-event state is needed.
- A room's msgs in seq order, none skipped: the append script publishes in seq order; a
  seq jump on this path (a message lost while reconnecting, say) is filled from the stream
  before the newer msg is delivered, and an older or repeated seq is dropped.
- After a disconnect: reconnect with backoff, resubscribe, then read every tracked room's
  stream after its last delivered seq. Tracked rooms are those with a local subscription:
  group rooms from the moment they are subscribed (baseline = the room's seq then), rooms
  reached through patterns (dm inboxes, the collective) once they delivered a msg.
  At most `max_rooms` are tracked (least recently delivered dropped first); a room no
  subscription covers any more is dropped on unsubscribe. If Redis came back without its
  data (a new store epoch), tracked rooms restart from seq 0 rather than drop new msgs.
  Dm rooms that never delivered here are found in the local users' inbox logs
  (redis_inbox.py says which entries, exactly); a collective room whose very first msg was
  published during the outage still waits for its next msg.
- A dead connection is noticed within 2 x `ping` (a PING when idle for `ping` seconds).
- Pub/Sub is not a queue: a publish can reach Redis' other subscribers and not this node
  (the connection dropped at that moment). Only the stream is the truth; Pub/Sub is how a
  node learns early. An ephemeral event (typing, delta, presence) lost that way is lost.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgpack
import structlog
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from server import keys
from server.engine.base import Event, Page
from server.engine.redis_inbox import READ_LIMIT, InboxClock, missed
from server.engine.tasks import stop
from server.keys import Sub, subs_for, subs_matching

log = structlog.get_logger("os1.engine.redis")

Fetch = Callable[[list[tuple[str, int]]], Awaitable[list[Page]]]
Emit = Callable[[str, Event], None]
Connected = Callable[[], Awaitable[bool]]  # on each (re)connect: True when the store is new
Admit = Callable[[], AbstractAsyncContextManager[None]]  # the engine's gate, for callers' work

BACKOFF = (0.05, 2.0)  # first and longest pause between reconnection attempts, seconds
BATCH = 256  # rooms read per pipeline when catching up
LAST = 1 << 62  # read_after(room, LAST) returns only the room's last seq


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _commands(subs: Iterable[Sub], on: bool) -> list[tuple[str, ...]]:
    subs = list(subs)
    channels = tuple(s.name for s in subs if not s.pattern)
    patterns = tuple(s.name for s in subs if s.pattern)
    out: list[tuple[str, ...]] = []
    if channels:
        out.append(("SUBSCRIBE" if on else "UNSUBSCRIBE", *channels))
    if patterns:
        out.append(("PSUBSCRIBE" if on else "PUNSUBSCRIBE", *patterns))
    return out


class Fanout:
    def __init__(self, client: Redis, *, node: str, emit: Emit, fetch: Fetch, admit: Admit,
                 connected: Connected, ping: float, timeout: float, probe_timeout: float,
                 max_rooms: int) -> None:
        self._client = client
        self._emit_to = emit
        self._fetch = fetch
        # Commands run for a caller (subscribe) queue at the engine's gate like its other
        # calls; the reader's own (catch-up) use the pool's spare connections, not the queue.
        self._admit = admit
        self._connected = connected
        self.ping = ping
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self.max_rooms = max_rooms
        self._probe = Sub(False, keys.probe_channel(node, uuid.uuid4().hex[:12]))
        self._desired: Counter[Sub] = Counter()
        self._confirmed: set[Sub] = set()
        self._waiters: dict[Sub, list[asyncio.Future[None]]] = {}
        self._probes: dict[bytes, asyncio.Future[None]] = {}
        self._last: OrderedDict[str, int] = OrderedDict()  # room -> last delivered seq
        self._inboxes = InboxClock()
        self._conn: AbstractConnection | None = None
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the reader; wait (bounded) for the first subscription to work."""
        self._task = asyncio.create_task(self._run(), name="os1-redis-fanout")
        try:
            async with asyncio.timeout(self.timeout):
                await self._up.wait()
        except TimeoutError:
            log.warning("redis_pubsub_not_up_yet", waited=self.timeout)

    async def close(self) -> None:
        if self._task is not None:
            if not await stop(self._task, within=self.timeout):
                log.error("redis_pubsub_reader_did_not_stop")
            self._task = None

    # ---- subscriptions --------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Returns once Redis confirmed every subscription behind `channel`."""
        subs = subs_for(channel)
        self._desired.update(subs)  # kept even if this call fails: the next session has it
        new = [s for s in subs if self._desired[s] == 1]
        inbox = channel[len("inbox:"):] if channel.startswith("inbox:") else None
        if inbox is not None:
            self._inboxes.want(inbox)
        room = channel[len("room:"):] if channel.startswith("room:") else None
        if new and room is not None and room not in self._last:
            # Baseline read BEFORE subscribing: any msg past it that Pub/Sub did not bring is
            # found by the first seq jump, or by recovery after a reconnect.
            async with self._admit():
                last = (await self._fetch([(room, LAST)]))[0].last
            if room not in self._last:  # a reconnect during the read may have tracked it
                self._remember(room, last)
        # An old subscription may still await its confirmation (a concurrent call, or a
        # session starting): wait for it too, so callers can rely on live delivery.
        waiting = [s for s in subs if s not in new and s not in self._confirmed]
        if new or waiting:
            await self._confirm(new, waiting)
        if inbox is not None and self._inboxes.unknown(inbox):
            async with self._admit():
                at_ms = await self._redis_ms()
            self._inboxes.subscribed(inbox, at_ms)

    async def unsubscribe(self, channel: str) -> None:
        subs = subs_for(channel)
        self._desired.subtract(subs)
        gone = [s for s in subs if self._desired[s] <= 0]
        for s in gone:
            del self._desired[s]
            if not s.pattern and (room := keys.room_of_channel(s.name)) \
                    and room.startswith("user:"):
                self._inboxes.drop(room[len("user:"):])
        if not gone:
            return
        self._forget(gone)
        try:
            await self._send(_commands(gone, on=False))
        except (ConnectionError, RedisError, OSError):
            pass  # no session: the next one subscribes to _desired only

    async def _confirm(self, new: list[Sub], waiting: list[Sub]) -> None:
        """Send SUBSCRIBE for `new`; wait until Redis confirmed `new` and `waiting`."""
        loop = asyncio.get_running_loop()
        subs = new + waiting
        futs = [loop.create_future() for _ in subs]
        for sub, fut in zip(subs, futs, strict=True):  # before sending: the reply may come first
            self._waiters.setdefault(sub, []).append(fut)
        try:
            if new:
                await self._wait_up()
                await self._send(_commands(new, on=True))
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(*futs)
        except TimeoutError as err:
            raise ConnectionError("redis did not confirm the subscription in time") from err
        finally:
            self._drop_waiters(subs, futs)

    def _drop_waiters(self, subs: list[Sub], futs: list[asyncio.Future[None]]) -> None:
        for sub, fut in zip(subs, futs, strict=True):
            if fut.done() and not fut.cancelled():
                fut.exception()  # retrieved, so asyncio does not log it as lost
            waiting = self._waiters.get(sub, [])
            if fut in waiting:
                waiting.remove(fut)
            if not waiting:
                self._waiters.pop(sub, None)

    async def _wait_up(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._up.wait()
        except TimeoutError as err:
            raise ConnectionError("redis pub/sub is down") from err

    async def _send(self, commands: list[tuple[str, ...]]) -> None:
        conn = self._conn
        # Checked right before the write, with no await in between: a closed redis-py
        # connection would otherwise reconnect by itself, behind the reader's back.
        if conn is None or not self._up.is_set() or not conn.is_connected:
            raise ConnectionError("redis pub/sub is down")
        await conn.send_packed_command(conn.pack_commands(commands))

    def _forget(self, gone: list[Sub]) -> None:
        """Stop tracking rooms that no remaining subscription covers."""
        if any(s.pattern for s in gone):
            stale = [room for room in self._last if not self._wanted(room)]
        else:
            stale = [r for s in gone if (r := keys.room_of_channel(s.name)) and not self._wanted(r)]
        for room in stale:
            self._last.pop(room, None)

    def _wanted(self, room: str) -> bool:
        return any(s in self._desired for s in subs_matching(room))

    # ---- readiness ------------------------------------------------------------------------

    async def probe(self) -> bool:
        """True when a publish comes back through this node's subscriber in time."""
        if not self._up.is_set():
            return False
        token = uuid.uuid4().hex.encode()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._probes[token] = fut
        try:
            async with asyncio.timeout(self.probe_timeout):
                await self._client.publish(self._probe.name, token)
                await fut
            return True
        except (TimeoutError, RedisError, OSError):
            return False
        finally:
            self._probes.pop(token, None)

    # ---- the reader -----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF[0]
        while True:  # until close() cancels; every wait inside is bounded
            conn: AbstractConnection = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await self._session(conn)
            except (RedisError, OSError) as err:
                log.warning("redis_pubsub_down", error=repr(err), retry_in=round(delay, 3))
            except Exception:  # a bug here must not leave the node deaf for good: start over
                log.exception("redis_pubsub_failed", retry_in=round(delay, 3))
            finally:
                was_up = self._up.is_set()
                self._down()
                await conn.disconnect(nowait=True)
            delay = BACKOFF[0] if was_up else min(delay * 2, BACKOFF[1])
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _down(self) -> None:
        self._up.clear()
        self._inboxes.down()
        self._conn = None
        self._confirmed.clear()
        for futs in self._waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_exception(ConnectionError("redis pub/sub connection lost"))

    async def _session(self, conn: AbstractConnection) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]
        self._conn = conn
        if await self._connected():  # before subscribing, so no msg is judged by old seqs
            log.warning("redis_store_is_new", rooms=len(self._last))
            for room in self._last:
                self._last[room] = 0
        initial = [self._probe, *self._desired]
        await conn.send_packed_command(conn.pack_commands(_commands(initial, on=True)))
        pending = set(initial)
        async with asyncio.timeout(self.timeout):
            while pending:
                confirmed = await self._handle(await conn.read_response(timeout=math.inf))
                if confirmed is not None:
                    pending.discard(confirmed)
        # Subscribed: whatever the stream holds now past a tracked room's last seq was missed,
        # and so was every msg the inbox logs list of a dm room that is not tracked.
        at_ms = await self._redis_ms()
        tracked = self._tracked()
        found = await self._missed_dms(dict(tracked))
        await self._catch_up(tracked + list(found.items()))
        self._inboxes.up(at_ms, asyncio.get_running_loop().time())
        self._up.set()
        log.info("redis_pubsub_up", subscriptions=len(self._desired), recovered_rooms=len(self._last),
                 new_dm_rooms=len(found))
        await self._pump(conn)

    async def _pump(self, conn: AbstractConnection) -> None:
        pinged = False
        loop = asyncio.get_running_loop()
        while True:
            reply = await conn.read_response(timeout=self.ping)
            if reply is None:
                if pinged:
                    raise TimeoutError(f"no reply from redis pub/sub in {2 * self.ping}s")
                await conn.send_packed_command(conn.pack_command("PING"))
                pinged = True
                continue
            pinged = False
            self._inboxes.alive(loop.time())  # the connection worked up to here
            await self._handle(reply)

    async def _handle(self, reply: Any) -> Sub | None:
        """One push from Redis; returns the subscription it confirms, if it is one."""
        kind = reply[0]
        if kind == b"message":
            name = reply[1].decode()
            await self._on_message(Sub(False, name), name, reply[2])
        elif kind == b"pmessage":
            await self._on_message(Sub(True, reply[1].decode()), reply[2].decode(), reply[3])
        elif kind in (b"subscribe", b"psubscribe"):
            sub = Sub(kind == b"psubscribe", reply[1].decode())
            self._confirmed.add(sub)
            for fut in self._waiters.pop(sub, []):
                if not fut.done():
                    fut.set_result(None)
            return sub
        elif kind in (b"unsubscribe", b"punsubscribe"):
            self._confirmed.discard(Sub(kind == b"punsubscribe", reply[1].decode()))
        return None

    async def _on_message(self, sub: Sub, channel: str, data: bytes) -> None:
        if sub == self._probe:
            fut = self._probes.pop(data, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
            return
        room = keys.room_of_channel(channel)
        if room is None or sub != self._canonical(room):
            return  # another copy of this event is (or was) delivered via the canonical one
        try:
            event = msgpack.unpackb(data)
        except ValueError:  # msgpack's errors derive from it
            event = None
        if not isinstance(event, dict):
            log.warning("redis_foreign_payload", channel=channel, size=len(data))
            return
        if event.get("t") == "msg" and isinstance(event.get("seq"), int) \
                and not room.startswith("user:"):
            await self._deliver(room, event)
        else:
            self._emit(room, event)

    def _canonical(self, room: str) -> Sub | None:
        return next((s for s in subs_matching(room) if s in self._confirmed), None)

    # ---- ordered delivery -----------------------------------------------------------------

    async def _deliver(self, room: str, msg: Event) -> None:
        seq: int = msg["seq"]
        last = self._last.get(room)
        if last is not None and seq > last + 1:
            await self._catch_up([(room, last)])  # the gap first, in order, from the stream
            last = self._last.get(room)
        if last is None or seq > last:
            self._deliver_one(room, msg)

    async def _redis_ms(self) -> int:
        """The first whole millisecond after now on Redis' clock (inbox log ids are in ms)."""
        sec, usec = await self._client.time()
        return int(sec) * 1000 + int(usec) // 1000 + 1

    async def _missed_dms(self, tracked: dict[str, int]) -> dict[str, int]:
        """Untracked dm rooms of local inboxes with msgs logged since the loss (redis_inbox)."""
        windows = list(self._inboxes.windows().items())
        entries: list[tuple[str, int]] = []
        for i in range(0, len(windows), BATCH):
            batch = windows[i : i + BATCH]
            async with self._client.pipeline(transaction=False) as pipe:
                for user, start in batch:
                    pipe.xrange(keys.inbox(user), min=str(start), max="+", count=READ_LIMIT)
                replies = await pipe.execute()
            for (user, _), reply in zip(batch, replies, strict=True):
                if len(reply) >= READ_LIMIT:
                    log.warning("redis_inbox_log_truncated", user=user, read=len(reply))
                entries += [(_text(f[b"r"]), int(f[b"s"])) for _, f in reply]
        return missed(entries, tracked)

    def _tracked(self) -> list[tuple[str, int]]:
        for room in [r for r in self._last if not self._wanted(r)]:
            del self._last[room]
        return list(self._last.items())

    async def _catch_up(self, rooms: list[tuple[str, int]]) -> None:
        """Deliver every stored msg past each (room, last delivered seq), oldest first."""
        for i in range(0, len(rooms), BATCH):
            batch = rooms[i : i + BATCH]
            for (room, last), page in zip(batch, await self._fetch(batch), strict=True):
                if page.first_retained > last + 1 and page.last > last:
                    log.warning("redis_gap_beyond_retention", room=room, after=last,
                                lost=min(page.first_retained, page.last + 1) - last - 1)
                for msg in page.msgs:
                    if msg["seq"] > self._last.get(room, last):
                        self._deliver_one(room, msg)

    def _deliver_one(self, room: str, msg: Event) -> None:
        self._remember(room, msg["seq"])
        self._emit(room, msg)

    def _remember(self, room: str, seq: int) -> None:
        self._last[room] = seq
        self._last.move_to_end(room)
        if len(self._last) > self.max_rooms:
            self._last.popitem(last=False)

    def _emit(self, room: str, event: Event) -> None:
        try:
            self._emit_to(room, event)
        except Exception:  # one failing event must not stop delivery of every other room
            log.exception("listener_failed", room=room, t=event.get("t"))
