"""Async Python SDK for the OS1 hub (protocol v1).

``Client`` is a :class:`clients.connection.Connection` (reconnect, resume, dedupe, bounded
event queue) plus one typed method per request of the protocol::

    async with Client("ws://127.0.0.1:8080/ws", token) as hub:
        await hub.join("dm:samantha", since=0)
        await hub.send("dm:samantha", "hello")
        async for event in hub:
            ...

Exceptions (tree in :mod:`clients.errors`) are re-exported here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from clients.connection import Connection
from clients.errors import (
    ConnectionClosedError,
    ConnectionLostError,
    OS1Error,
    RequestError,
    RequestTimeoutError,
)
from clients.wire import Frame

__all__ = [
    "Client",
    "ConnectionClosedError",
    "ConnectionLostError",
    "OS1Error",
    "RequestError",
    "RequestTimeoutError",
]


class Client(Connection):
    """An OS1 hub client. Replies that are ``error`` frames raise :class:`RequestError`."""

    async def join(self, room: str, since: int | None = None, create: bool = False) -> Frame:
        frame: Frame = {"t": "join", "room": room}
        if since is not None:
            frame["since"] = since
        if create:
            frame["create"] = True
        return await self._call(
            frame, lambda r: self._state.on_joined(room, r, since, resume=False)
        )

    async def leave(self, room: str) -> Frame:
        return await self._call(
            {"t": "leave", "room": room}, lambda r: self._state.on_left(room, r)
        )

    async def send(
        self,
        room: str,
        text: str,
        *,
        cid: str | None = None,
        reply_to: Any = None,
        stream: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Frame:
        frame: Frame = {"t": "send", "room": room, "text": text, "cid": cid or uuid.uuid4().hex}
        for key, value in (("reply_to", reply_to), ("stream", stream), ("meta", meta)):
            if value is not None:
                frame[key] = value
        return await self._call(frame, None)

    async def inbox(self, limit: int | None = None) -> list[Frame]:
        """My dm rooms, most recently active first: {room, seq, ts} each (at most 1,000)."""
        frame: Frame = {"t": "inbox"}
        if limit is not None:
            frame["limit"] = limit
        rooms = (await self._call(frame, None)).get("rooms")
        return rooms if isinstance(rooms, list) else []

    async def history(
        self, room: str, before: int | None = None, limit: int | None = None
    ) -> list[Frame]:
        frame: Frame = {"t": "history", "room": room}
        if before is not None:
            frame["before"] = before
        if limit is not None:
            frame["limit"] = limit
        msgs = (await self._call(frame, None)).get("msgs")
        return list(msgs) if isinstance(msgs, list) else []

    async def invite(self, room: str, persona: str) -> Frame:
        return await self._call({"t": "invite", "room": room, "persona": persona}, None)

    async def watch(self, room: str) -> Frame:
        return await self._call(
            {"t": "watch", "room": room}, lambda r: self._state.on_watching(room, r)
        )

    async def ping(self) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await self._call({"t": "ping"}, None)
        return loop.time() - start

    async def delta(self, room: str, stream: str, text: str) -> None:
        await self._fire({"t": "delta", "room": room, "stream": stream, "text": text})

    async def typing(self, room: str) -> None:
        await self._fire({"t": "typing", "room": room})
