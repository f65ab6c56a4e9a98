"""One client connection's outgoing side: a bounded queue and a batching writer.

Fan-out never awaits a socket. It appends ready-made frame bytes to each connection's
queue and marks it dirty; once per event-loop tick the Flusher writes each dirty
connection's whole queue in one `transport.write` (several frames, one syscall). A
connection whose transport is paused (the peer is not reading) keeps queueing; past
`limit` frames it is closed with 4008 and its queue dropped, so the rest of the room is
never held up and nothing buffers without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from server.auth import Identity
from server.errors import CloseCode
from server.protocol.codec import Format
from server.ratelimit import Strikes, TokenBucket

_NONE: frozenset[str] = frozenset()


class WritableProtocol(Protocol):
    @property
    def writing_paused(self) -> bool: ...

    async def _drain_helper(self) -> None: ...


class Flusher:
    """Writes every dirty connection once per loop tick."""

    def __init__(self) -> None:
        self._dirty: list[Connection] = []
        self._scheduled = False
        self.after_flush: list[Callable[[], None]] = []

    def mark(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()
        if self.after_flush:
            callbacks, self.after_flush = self.after_flush, []
            for cb in callbacks:
                cb()


class Connection:
    __slots__ = (
        "_drain_task", "_flusher", "_on_overflow", "_out", "_protocol", "_transport",
        "closed", "dirty", "fmt", "id", "identity", "joining", "limit", "limiter", "outbox",
        "rooms", "sender", "strikes", "watching",
    )

    def __init__(
        self,
        session: str,
        fmt: Format,
        *,
        transport: asyncio.Transport,
        protocol: WritableProtocol,
        flusher: Flusher,
        limit: int,
        limiter: TokenBucket,
        on_overflow: Callable[[Connection], None],
    ) -> None:
        self.id = session
        self.fmt = fmt
        self.identity: Identity | None = None
        # Made on first use: most connections join a room or two, many none, and three
        # empty containers cost ~500 bytes per idle connection.
        self.rooms: AbstractSet[str] = _NONE
        self.watching: AbstractSet[str] = _NONE
        self.joining: dict[str, list[dict[str, Any]]] | None = None
        self.limit = limit
        self.limiter = limiter
        self.strikes: Strikes | None = None  # made at the first refusal: most never get one
        # Sends waiting for the store, and the task appending them (engines that pipeline;
        # server.hub.Hub.submit): made by a burst of sends, dropped when it is through.
        self.outbox: deque[Any] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.closed = False
        self.dirty = False
        self._out: list[bytes] = []
        self._transport = transport
        self._protocol = protocol
        self._flusher = flusher
        self._on_overflow = on_overflow
        self._drain_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.identity.id if self.identity else '-'}>"

    def add_room(self, room: str) -> None:
        if not isinstance(self.rooms, set):
            self.rooms = set()
        self.rooms.add(room)

    def drop_room(self, room: str) -> None:
        if isinstance(self.rooms, set):
            self.rooms.discard(room)

    def add_watch(self, target: str) -> None:
        if not isinstance(self.watching, set):
            self.watching = set()
        self.watching.add(target)

    def drop_watch(self, target: str) -> None:
        if isinstance(self.watching, set):
            self.watching.discard(target)

    def push(self, data: bytes) -> None:
        """Queue one complete WebSocket frame; never blocks."""
        if self.closed:
            return
        out = self._out
        if len(out) >= self.limit:
            # A burst within one loop tick (e.g. many pipelined requests) is not a slow
            # reader: while the transport takes writes, hand the batch over now.
            self.flush()
        if len(out) >= self.limit:
            self.overflow()
            return
        out.append(data)
        if not self.dirty:
            self.dirty = True
            self._flusher.mark(self)

    def overflow(self) -> None:
        """Too slow to read: drop the queue, stop writing, let the transport close 4008."""
        self.closed = True
        self._out.clear()
        self._on_overflow(self)

    def flush(self) -> None:
        self.dirty = False
        out = self._out
        if not out or self.closed:
            return
        transport = self._transport
        if transport.is_closing():
            out.clear()
            return
        if self._protocol.writing_paused:
            if self._drain_task is None:
                self._drain_task = asyncio.ensure_future(self._drain())
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    async def _drain(self) -> None:
        try:
            # Shielded: aiohttp shares one drain waiter between every writer of the socket
            # (its own close frame too). stop() cancels this task; unshielded, that cancels
            # the shared waiter, so the close frame's drain raises CancelledError, the close
            # never times out into an abort, and a stuck peer is never dropped.
            await asyncio.shield(self._protocol._drain_helper())
        except (ConnectionError, RuntimeError):
            self._out.clear()
            return
        finally:
            self._drain_task = None
        if self._out and not self.dirty:
            self.dirty = True
            self._flusher.mark(self)

    @property
    def queued(self) -> int:
        return len(self._out)

    def stop(self) -> None:
        """No more writes; cancel a pending drain."""
        self.closed = True
        self._out.clear()
        if self._drain_task is not None:
            self._drain_task.cancel()
            self._drain_task = None

    def abort(self) -> None:
        self.stop()
        self._transport.abort()


__all__ = ["CloseCode", "Connection", "Flusher"]
