"""The client SDK against a real hub: reconnect, resume, restarts (no loss, no duplicate)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from conftest import HubServer, make_settings, start_hub
from sdk_util import FAST, connect, event_of, kill, msgs_until, server_close

from clients.sdk import Client, ConnectionClosedError
from server.errors import CloseCode

__all__ = ["connect"]  # a fixture, used by name


# -- reconnect and resume ------------------------------------------------------------
async def test_killed_connection_resumes_without_loss_or_duplicates(
    connect: Callable[..., Any],
) -> None:
    alice = await connect()
    bob = await connect("bob")
    await alice.join("group:r", create=True)
    await bob.join("group:r")

    async def sender() -> None:
        for i in range(60):
            await bob.send("group:r", f"m{i}")
            await asyncio.sleep(0.005)

    task = asyncio.create_task(sender())
    for _ in range(3):
        await asyncio.sleep(0.05)
        kill(alice)
    got = await msgs_until(alice, "group:r", 60)
    await task
    assert [m["seq"] for m in got] == list(range(1, 61))
    assert alice.reconnects >= 1
    await asyncio.sleep(0.1)
    while True:  # nothing more than the 60 arrives: duplicates were dropped
        try:
            extra = await alice.next_event(timeout=0.05)
        except TimeoutError:
            break
        assert extra["t"] != "msg", extra


async def test_send_in_flight_during_a_drop_is_resent_with_its_cid(
    connect: Callable[..., Any],
) -> None:
    alice = await connect()
    await alice.join("group:s", create=True)
    sends = [asyncio.create_task(alice.send("group:s", f"x{i}")) for i in range(20)]
    await asyncio.sleep(0)  # some frames are on the wire, some not yet
    kill(alice)
    acks = await asyncio.gather(*sends)
    assert sorted(a["seq"] for a in acks) == list(range(1, 21))
    assert len(await alice.history("group:s", limit=100)) == 20


async def test_requests_wait_across_a_reconnect(connect: Callable[..., Any]) -> None:
    alice = await connect()
    kill(alice)
    assert await alice.ping() >= 0  # waits for the resume, then goes out
    assert (await event_of(alice, "reconnected"))["attempt"] >= 1


@pytest.mark.parametrize("code", [CloseCode.UNAUTHORIZED, CloseCode.FORBIDDEN])
async def test_fatal_close_ends_iteration(hub: HubServer, connect: Callable[..., Any],
                                          code: CloseCode) -> None:
    alice = await connect()
    server_close(hub, alice, code)
    async with asyncio.timeout(5):
        events = [e async for e in alice]
    assert "reconnecting" not in [e["t"] for e in events]
    assert alice.closed is not None and alice.closed.code == code
    with pytest.raises(ConnectionClosedError):
        await alice.ping()


async def test_going_away_and_slow_reader_closes_are_resumed(
    hub: HubServer, connect: Callable[..., Any],
) -> None:
    alice = await connect()
    for code in (CloseCode.GOING_AWAY, CloseCode.TOO_SLOW):
        server_close(hub, alice, code)
        reconnecting = await event_of(alice, "reconnecting")
        assert reconnecting["code"] == code
        await event_of(alice, "reconnected")
    assert alice.reconnects == 2


async def test_expired_token_stops_reconnecting(hub: HubServer) -> None:
    client = Client(hub.url, hub.token(ttl=1), backoff=FAST)
    await client.connect()
    await asyncio.sleep(2.1)  # exp has whole-second resolution
    kill(client)
    async with asyncio.timeout(5):
        async for _ in client:
            pass
    assert client.closed is not None and client.closed.code == CloseCode.UNAUTHORIZED


async def test_reconnect_disabled_ends_on_loss(connect: Callable[..., Any]) -> None:
    alice = await connect(reconnect=False)
    kill(alice)
    async with asyncio.timeout(5):
        async for _ in alice:
            pass
    assert alice.closed is not None and alice.closed.code == 1006


async def test_a_rejoin_refused_as_unavailable_is_retried_not_forgotten(
    hub: HubServer, connect: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reconnect storm can find the store busy: the room must be resumed later, not dropped."""
    alice = await connect()
    bob = await connect("bob")
    await alice.join("group:u", create=True)
    await bob.join("group:u")
    engine, refusals = hub.hub.engine, [1, 1]
    read_after = engine.read_after

    async def busy_store(room: str, after: int, limit: int) -> Any:
        if refusals:
            refusals.pop()
            raise ConnectionError("store busy")  # the hub answers unavailable
        return await read_after(room, after, limit)

    monkeypatch.setattr(engine, "read_after", busy_store)
    kill(alice)
    await bob.send("group:u", "while alice was away")
    seen: dict[str, Any] = {}
    async with asyncio.timeout(5):
        while len(seen) < 2:
            event = await alice.next_event()
            if event["t"] in ("msg", "reconnected"):
                seen[event["t"]] = event
    assert seen["msg"]["text"] == "while alice was away" and not refusals
    assert "error" not in seen["reconnected"]["rooms"]["group:u"]
    assert alice.reconnects == 1  # two refused resumes, then one that went through


async def test_persona_inbox_is_resumed_without_loss(connect: Callable[..., Any]) -> None:
    sam = await connect("samantha", role="persona")
    alice = await connect()
    room = (await alice.join("dm:samantha"))["room"]
    await alice.send(room, "one")
    await msgs_until(sam, room, 1)
    kill(sam)
    for text in ("two", "three"):  # while samantha is away
        await alice.send(room, text)
    got = await msgs_until(sam, room, 2)
    assert [m["text"] for m in got] == ["two", "three"]


async def test_fresh_hub_after_restart_is_not_mistaken_for_duplicates(tmp_path: Any) -> None:
    """An in-memory hub restarts empty: seqs count from 1 again and must be delivered."""
    hub = await start_hub(make_settings(tmp_path, drain_timeout=1.0))
    port = int(hub.base.rsplit(":", 1)[1])
    alice = Client(hub.url, hub.token(), backoff=FAST)
    sam = Client(hub.url, hub.token(role="persona", sub="samantha"), backoff=FAST)
    try:
        for c in (alice, sam):
            await c.connect()
        room = (await alice.join("dm:samantha"))["room"]
        for text in ("a", "b", "c"):
            await alice.send(room, text)
        await msgs_until(sam, room, 3)
        await hub.stop()
        hub = await start_hub(make_settings(tmp_path, port=port))  # a new, empty engine
        reconnected = await event_of(alice, "reconnected")
        assert reconnected["rooms"][room].get("reset") is True
        await event_of(sam, "reconnected")
        await alice.send(room, "after")
        assert [m["text"] for m in await msgs_until(alice, room, 1)] == ["after"]
        assert [m["text"] for m in await msgs_until(sam, room, 1)] == ["after"]
    finally:
        for c in (alice, sam):
            await c.close()
        await hub.stop()


async def test_hub_restart_under_concurrent_senders(tmp_path: Any) -> None:
    """A reader and two senders across a hub restart (same store, same port): every msg
    arrives once, in seq order, and every send is acked exactly once."""
    hub = await start_hub(make_settings(tmp_path, drain_timeout=1.0))
    port = int(hub.base.rsplit(":", 1)[1])
    clients = [Client(hub.url, hub.token(sub=s), backoff=FAST) for s in ("alice", "bob", "carol")]
    reader, *senders = clients
    try:
        for c in clients:
            await c.connect()
            await c.join("group:restart", create=True)

        async def send_all(client: Client, name: str) -> list[int]:
            seqs = []
            for i in range(40):
                seqs.append((await client.send("group:restart", f"{name}{i}"))["seq"])
                await asyncio.sleep(0.005)
            return seqs

        tasks = [asyncio.create_task(send_all(c, n)) for c, n in zip(senders, "bc", strict=True)]
        await asyncio.sleep(0.08)
        await hub.stop()
        hub = await start_hub(make_settings(tmp_path, port=port), engine=hub.hub.engine)
        acked = list(itertools.chain(*await asyncio.gather(*tasks)))
        got = await msgs_until(reader, "group:restart", 80, limit=20)
        assert sorted(acked) == list(range(1, 81))
        assert [m["seq"] for m in got] == list(range(1, 81))
        assert sorted(m["text"] for m in got) == sorted(f"{n}{i}" for n in "bc" for i in range(40))
        assert all(c.reconnects == 1 for c in clients)
    finally:
        for c in clients:
            await c.close()
        await hub.stop()

