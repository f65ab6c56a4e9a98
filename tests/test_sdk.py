"""The client SDK against a real hub on a real socket: connect, auth, requests, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conftest import HubServer
from sdk_util import connect, kill, msgs_until
from websockets.asyncio.server import ServerConnection, serve

from clients.sdk import (
    Client,
    ConnectionClosedError,
    OS1Error,
    RequestError,
    RequestTimeoutError,
)
from clients.wire import Codec

__all__ = ["connect"]  # a fixture, used by name


# -- connect and auth ---------------------------------------------------------------
async def test_hello_gets_welcome(connect: Callable[..., Any]) -> None:
    client = await connect()
    assert client.welcome["t"] == "welcome"
    assert client.me == {"id": "alice", "role": "human", "name": "alice"}
    assert await client.ping() >= 0


async def test_bad_token_raises_unauthorized(hub: HubServer) -> None:
    client = Client(hub.url, "not-a-token")
    with pytest.raises(RequestError) as err:
        await client.connect()
    assert err.value.code == "unauthorized"


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_header_auth(hub: HubServer, fmt: str) -> None:
    async with Client(hub.url, hub.token(), fmt=fmt, use_header_auth=True) as client:  # type: ignore[arg-type]
        assert client.welcome is not None
        assert client.welcome["t"] == "welcome" and "re" not in client.welcome
        assert (await client.join("group:h", create=True))["room"] == "group:h"


async def test_header_auth_with_bad_token_is_refused_at_upgrade(hub: HubServer) -> None:
    with pytest.raises(RequestError) as err:
        await Client(hub.url, "bad", use_header_auth=True).connect()
    assert err.value.code == "unauthorized"


async def test_unreachable_hub_raises_connection_closed() -> None:
    client = Client("ws://127.0.0.1:9/ws", "t", request_timeout=2)
    with pytest.raises(ConnectionClosedError, match="cannot connect"):
        await client.connect()


async def test_urls_connect_skips_a_dead_node_and_reconnects_to_the_next(
        hub_factory: Callable[..., Any]) -> None:
    """Two memory hubs with one secret stand in for two nodes of one hub."""
    n1: HubServer = await hub_factory(node="n1")
    n2: HubServer = await hub_factory(node="n2")
    dead = "ws://127.0.0.1:9/ws"
    client = Client(dead, n1.token(), urls=[n1.url, n2.url], backoff=(0.02, 0.2),
                    request_timeout=2)
    async with client:
        assert client.url == n1.url and client.welcome["server"]["node"] == "n1"
        kill(client)
        async with asyncio.timeout(5):
            while (await client.next_event())["t"] != "reconnected":
                pass
        assert client.url == n2.url and client.welcome["server"]["node"] == "n2"


# -- requests ---------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_join_send_ack_msg(connect: Callable[..., Any], fmt: str) -> None:
    alice = await connect(fmt=fmt)
    joined = await alice.join("dm:samantha")
    room = joined["room"]
    assert room == "dm:samantha:alice" and alice.room_name("dm:samantha") == room
    ack = await alice.send("dm:samantha", "hello", meta={"k": 1})
    assert ack["t"] == "ack" and ack["room"] == room and ack["seq"] == 1
    [msg] = await msgs_until(alice, room, 1)
    assert (msg["text"], msg["seq"], msg["mid"], msg["meta"]) == ("hello", 1, ack["mid"], {"k": 1})
    assert alice.last_seq[room] == 1


async def test_msgpack_and_json_clients_talk(connect: Callable[..., Any]) -> None:
    alice = await connect(fmt="msgpack")
    bob = await connect("bob", fmt="json")
    await alice.join("group:mix", create=True)
    await bob.join("group:mix")
    await bob.send("group:mix", "ünïcødé …")
    [msg] = await msgs_until(alice, "group:mix", 1)
    assert msg["text"] == "ünïcødé …" and msg["from"]["id"] == "bob"


async def test_error_reply_raises_request_error(connect: Callable[..., Any]) -> None:
    alice = await connect()
    with pytest.raises(RequestError) as err:
        await alice.join("group:nope")
    assert err.value.code == "not_found" and err.value.frame["t"] == "error"
    with pytest.raises(RequestError) as err:
        await alice.watch("collective:all")
    assert err.value.code == "forbidden"


async def test_history_and_join_since(connect: Callable[..., Any]) -> None:
    alice = await connect()
    await alice.join("group:h", create=True)
    for i in range(5):
        await alice.send("group:h", f"m{i}")
    page = await alice.history("group:h", before=4, limit=2)
    assert [m["seq"] for m in page] == [2, 3]
    late = await connect("bob")
    joined = await late.join("group:h", since=2)
    assert joined["replayed"] == 3
    assert [m["seq"] for m in await msgs_until(late, "group:h", 3)] == [3, 4, 5]


async def test_same_cid_gives_the_same_seq(connect: Callable[..., Any]) -> None:
    alice = await connect()
    await alice.join("group:c", create=True)
    first = await alice.send("group:c", "once", cid="cid-1")
    again = await alice.send("group:c", "once", cid="cid-1")
    assert (again["seq"], again["mid"]) == (first["seq"], first["mid"])
    assert len(await alice.history("group:c")) == 1


async def test_persona_streams_delta_then_msg(connect: Callable[..., Any]) -> None:
    alice = await connect()
    sam = await connect("samantha", role="persona", name="Samantha")
    room = (await alice.join("dm:samantha"))["room"]
    await sam.typing(room)
    await sam.delta(room, "st1", "Hel")
    await sam.delta(room, "st1", "lo")
    await sam.send(room, "Hello", stream="st1")
    kinds: list[str] = []
    async with asyncio.timeout(5):
        while not kinds or kinds[-1] != "msg":
            event = await alice.next_event()
            if event.get("room") == room and event["t"] in ("typing", "delta", "msg"):
                kinds.append(event["t"])
    assert kinds == ["typing", "delta", "delta", "msg"]


async def test_persona_inbox_without_join(connect: Callable[..., Any]) -> None:
    sam = await connect("samantha", role="persona")
    alice = await connect()
    room = (await alice.join("dm:samantha"))["room"]
    await alice.send(room, "hi sam")
    [msg] = await msgs_until(sam, room, 1)
    assert msg["text"] == "hi sam"


async def test_bounded_event_queue_applies_backpressure_without_loss(
    connect: Callable[..., Any],
) -> None:
    alice = await connect(max_events=2)
    bob = await connect("bob")
    await alice.join("group:bp", create=True)
    await bob.join("group:bp")
    for i in range(20):
        await bob.send("group:bp", f"m{i}")
    await asyncio.sleep(0.1)  # alice's reader is parked on the full queue meanwhile
    got = await msgs_until(alice, "group:bp", 20)
    assert [m["seq"] for m in got] == list(range(1, 21))


# -- client-side bounds and lifecycle ------------------------------------------------------
async def test_oversized_frame_is_refused_locally(connect: Callable[..., Any]) -> None:
    alice = await connect()
    with pytest.raises(OS1Error, match="max_frame"):
        await alice.send("group:x", "x" * 70_000)
    assert await alice.ping() >= 0  # still connected


def client_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks running SDK code (the hub's own tasks share the loop)."""
    return [t for t in asyncio.all_tasks()
            if "/clients/" in t.get_coro().cr_code.co_filename]  # type: ignore[union-attr]


async def test_close_leaves_no_tasks_and_fails_waiters(connect: Callable[..., Any]) -> None:
    alice = await connect()
    await alice.join("group:t", create=True)
    assert client_tasks()
    kill(alice)  # close in the middle of a reconnect
    await alice.close()
    assert client_tasks() == []
    with pytest.raises(ConnectionClosedError):
        await alice.send("group:x", "late")
    async with asyncio.timeout(1):
        _ = [e async for e in alice]  # what was queued still drains, then iteration ends
    with pytest.raises(ConnectionClosedError):
        await alice.next_event()


async def test_silent_hub_times_out_requests() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # hello
        await ws.send(Codec("json").encode({"t": "welcome", "re": 0, "me": {"id": "a"}}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with Client(f"ws://127.0.0.1:{port}", "t", request_timeout=0.2) as client:
            with pytest.raises(RequestTimeoutError):
                await client.ping()
            with pytest.raises(asyncio.TimeoutError):
                await client.ping()
