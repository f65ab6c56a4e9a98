"""Helpers for the SDK tests against a real hub (imported like `wire.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import HubServer

from clients.sdk import Client
from server.app import TRANSPORT
from server.errors import CloseCode

FAST = (0.02, 0.2)  # backoff for tests: reconnect quickly


async def msgs_until(client: Client, room: str, count: int, limit: float = 10.0) -> list[dict[str, Any]]:
    """Collect `msg` events of `room` until `count` arrived (or fail after `limit` s)."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(limit):
        while len(got) < count:
            event = await client.next_event()
            if event["t"] == "msg" and event["room"] == room:
                got.append(event)
    return got


async def event_of(client: Client, kind: str, limit: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(limit):
        while (event := await client.next_event())["t"] != kind:
            pass
    return event


def kill(client: Client) -> None:
    """Cut the TCP connection under the client: no close frame (1006)."""
    assert client._ws is not None
    client._ws.transport.abort()


def server_close(hub: HubServer, client: Client, code: CloseCode) -> None:
    transport = hub.app[TRANSPORT]
    session = (client.welcome or {})["session"]
    conn = next(c for c in transport.sockets if c.id == session)
    transport.close(conn, code, "test")


@pytest.fixture
async def connect(hub: HubServer) -> AsyncIterator[Callable[..., Any]]:
    clients: list[Client] = []

    async def factory(sub: str = "alice", role: str = "human", name: str | None = None,
                      **kw: Any) -> Client:
        kw.setdefault("backoff", FAST)
        client = Client(hub.url, hub.token(role=role, sub=sub, name=name), **kw)
        await client.connect()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()
