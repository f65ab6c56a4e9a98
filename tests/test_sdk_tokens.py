"""Token refresh in the SDK: a token source is asked for a fresh token on every connection,
so a client whose first token expired still reconnects; a failing source is named."""

from __future__ import annotations

import asyncio

import pytest
from conftest import HubServer
from sdk_util import FAST, kill

from clients.sdk import Client, ConnectionClosedError


async def reconnected(client: Client, before: int) -> None:
    async with asyncio.timeout(10):
        while client.reconnects == before:
            await client.next_event()


async def test_a_token_source_gives_each_connection_a_fresh_token(hub: HubServer) -> None:
    minted: list[str] = []

    def fresh() -> str:  # short-lived, as an auth service would hand out
        minted.append(hub.token("human", "alice", ttl=1))
        return minted[-1]

    client = Client(hub.url, fresh, backoff=FAST)
    await client.connect()
    try:
        await client.join("group:t", create=True)
        await asyncio.sleep(2.1)  # the first token has expired: a reconnect must not reuse it
        kill(client)
        await reconnected(client, 0)
        assert len(minted) == 2 and minted[0] != minted[1]
        ack = await client.send("group:t", "still here")  # the room came back with the session
        assert ack["seq"] == 1
    finally:
        await client.close()


async def test_without_a_source_an_expired_token_ends_the_client(hub: HubServer) -> None:
    client = Client(hub.url, hub.token("human", "alice", ttl=1), backoff=FAST)
    await client.connect()
    await asyncio.sleep(2.1)
    kill(client)
    async with asyncio.timeout(10):
        with pytest.raises(ConnectionClosedError) as raised:
            while True:
                await client.next_event()
    assert raised.value.code == 4001
    await client.close()


async def test_an_async_source_works_and_a_failing_one_is_named(hub: HubServer) -> None:
    async def fresh() -> str:
        return hub.token("human", "bob")

    client = Client(hub.url, fresh)
    assert (await client.connect())["me"]["id"] == "bob"
    await client.close()

    def broken() -> str:
        raise RuntimeError("auth service down")

    failing = Client(hub.url, broken)
    with pytest.raises(ConnectionClosedError, match=r"token source failed.*auth service down"):
        await failing.connect()
