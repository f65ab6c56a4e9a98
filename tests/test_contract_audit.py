"""An audit of the running hub against the wire contract (shared/design/protocol-v1.md).

Each test checks a sentence of the contract that tests/test_wire_*.py do not already pin
down, over raw WebSockets (tests/wire.py), in JSON and msgpack. The first section holds
what the audit found the hub doing differently (all fixed since).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import orjson
import pytest
from conftest import make_settings, start_hub
from websockets.exceptions import InvalidStatus
from wire import (
    Clients,
    Format,
    join,
    refused,
    send,
    settings_for,
    silent_ok,
    with_settings,
)

from server import auth
from server.config import Settings
from server.engine.memory import MemoryEngine

ERROR_CODES = {"bad_request", "unauthorized", "forbidden", "not_found", "too_large",
               "rate_limited", "conflict", "unavailable", "internal"}


@pytest.fixture
def hub_settings(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    return settings_for(request, tmp_path)


def exact_frame(n: int, fmt: Format, rid: Any = "edge") -> str | bytes:
    """A ping of exactly `n` bytes of payload in `fmt` (padded with an unknown field)."""
    for k in range(max(0, n - 64), n + 1):
        frame = {"t": "ping", "id": rid, "pad": "p" * k}
        data = orjson.dumps(frame) if fmt == "json" else msgpack.packb(frame, use_bin_type=True)
        if len(data) == n:
            return data.decode() if fmt == "json" else data
    raise AssertionError(f"no {fmt} ping of exactly {n} bytes")


# =========================================================================================
# Deviations found by the audit, now fixed: each asserts the contract.
# =========================================================================================


@pytest.mark.parametrize(("role", "sub"), [("human", "samantha"), ("observer", "samantha"),
                                           ("persona", "alice"), ("observer", "alice")])
async def test_dm_reaches_only_that_human_and_that_persona(clients: Clients, role: str,
                                                           sub: str) -> None:
    """'Only that human, that persona and admins can read or write it': a user of another
    role that merely shares an id with one side is neither that human nor that persona."""
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    impostor = await clients.login(role, sub)
    ack = await send(alice, "dm:samantha", "private")
    assert (await sam.recv_until("msg"))["mid"] == ack["mid"]
    reply = await send(sam, "dm:samantha:alice", "private too")
    assert (await alice.recv_until({"t": "msg", "mid": reply["mid"]}))["room"] == "dm:samantha:alice"
    await alice.send({"t": "typing", "room": "dm:samantha"})
    await sam.recv_until("typing")
    await impostor.quiet(lambda f: f["t"] in ("msg", "typing", "delta"), 0.3)


@with_settings(hello_timeout=0.5)
async def test_hello_deadline_is_not_extended_by_websocket_pings(clients: Clients) -> None:
    """'sent within 10 seconds of the upgrade; past that ... error unauthorized, close 4001'."""
    w = await clients.connect()
    stop = asyncio.Event()

    async def keep_pinging() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1)
            try:
                await w.ws.ping()
            except Exception:
                return

    pinger = asyncio.create_task(keep_pinging())
    try:
        code = await w.closed(within=2.5)
    finally:
        stop.set()
        pinger.cancel()
        await asyncio.gather(pinger, return_exceptions=True)
    assert code == 4001
    assert [f["code"] for f in w.frames if f["t"] == "error"] == ["unauthorized"]


@pytest.mark.parametrize("hub_settings", [{"max_frame": 1024}, {}], indirect=True,
                         ids=["max_frame=1024", "default"])
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_frame_of_exactly_max_frame_is_accepted(hub: Any, clients: Clients,
                                                      fmt: Format) -> None:
    w = await clients.login("human", "alice", fmt=fmt)
    assert w.welcome is not None
    max_frame = w.welcome["server"]["max_frame"]
    assert max_frame == hub.settings.max_frame
    await w.send_raw(exact_frame(max_frame, fmt))
    assert (await w.recv_until({"re": "edge"}))["t"] == "pong"


@pytest.mark.parametrize("case", ["json_no_t", "json_t_number", "json_t_null",
                                  "msgpack_no_t", "msgpack_t_bin"])
async def test_bad_envelope_error_still_carries_re(clients: Clients, case: str) -> None:
    """'every reply to it carries re equal to that id' — the error included."""
    raw: str | bytes = {
        "json_no_t": '{"id": "no-t"}',
        "json_t_number": '{"t": 5, "id": "no-t"}',
        "json_t_null": '{"t": null, "id": "no-t"}',
        "msgpack_no_t": msgpack.packb({"id": "no-t"}),
        "msgpack_t_bin": msgpack.packb({"t": b"ping", "id": "no-t"}, use_bin_type=True),
    }[case]
    alice = await clients.login("human", "alice")
    await alice.send_raw(raw)
    err = await alice.recv_until("error")
    assert err["code"] == "bad_request"
    await alice.ping()
    assert err.get("re") == "no-t", err


async def test_msgpack_integer_keys_keep_the_request_id(clients: Clients) -> None:
    mp = await clients.login("human", "alice", fmt="msgpack")
    await mp.send_raw(msgpack.packb({"t": "ping", "id": 7, 1: "x"}))
    reply = await mp.recv_until(lambda f: f["t"] in ("pong", "error"))
    await mp.ping()
    assert reply.get("re") == 7, reply


async def test_text_frame_with_invalid_utf8_is_bad_request(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    await alice.ws.send(b'{"t": "ping", "id": "\xff\xfe"}', text=True)
    err = await alice.recv_until("error")
    assert err["code"] == "bad_request"
    await alice.ping()


# =========================================================================================
# Verified: transport, envelope, authentication.
# =========================================================================================


async def test_unknown_subprotocol_only_means_json(hub: Any, clients: Clients) -> None:
    w = await clients.connect(subprotocols=["os1.v2.json"])
    assert w.ws.subprotocol is None
    await w.send({"t": "hello", "id": "h", "token": hub.token()})
    assert (await w.recv_until({"re": "h"}))["t"] == "welcome"  # a text frame (Wire checks)


@pytest.mark.parametrize("offer", [["os1.v1.msgpack", "os1.v1.json"],
                                   ["os1.v1.json", "os1.v1.msgpack"]])
async def test_both_subprotocols_offered(hub: Any, clients: Clients, offer: list[str]) -> None:
    w = await clients.connect(subprotocols=offer)
    assert w.ws.subprotocol in offer
    w.fmt = "msgpack" if w.ws.subprotocol == "os1.v1.msgpack" else "json"
    await w.send({"t": "hello", "id": 1, "token": hub.token()})
    assert (await w.recv_until({"re": 1}))["t"] == "welcome"
    await w.ping()


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_garbage_after_bearer_welcome_is_bad_request(hub: Any, clients: Clients,
                                                           fmt: Format) -> None:
    w = await clients.connect(fmt, headers={"Authorization": f"Bearer {hub.token()}"})
    assert "re" not in await w.recv_until("welcome")
    for raw in ("not json", b"\xc1", "[]", '{"id": 1}'):
        await w.send_raw(raw)
        assert (await w.recv_until("error"))["code"] == "bad_request"
    err = await w.request({"t": "hello", "id": "again", "token": hub.token()})
    assert err["t"] == "error" and err["code"] == "bad_request" and err["re"] == "again"
    await w.ping()
    assert w.ws.close_code is None


async def test_revoked_token_in_bearer_header_is_http_401(hub: Any, clients: Clients) -> None:
    token = hub.token("human", "mallory")
    async with aiohttp.ClientSession() as http, http.post(
            f"{hub.base}/api/admin/revoke", json={"sub": "mallory"},
            headers={"Authorization": f"Bearer {hub.token('admin', 'root')}"}) as r:
        assert r.status == 200
    with pytest.raises(InvalidStatus) as info:
        await clients.connect(headers={"Authorization": f"Bearer {token}"})
    assert info.value.response.status_code == 401


async def test_oversized_frame_before_hello_never_welcomes(clients: Clients) -> None:
    w = await clients.connect()
    await w.send_raw("x" * 70_000)
    assert await w.closed() in (1009, 4001)
    assert not any(f["t"] == "welcome" for f in w.frames)


@with_settings(max_frame=1024)
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_frame_one_byte_above_max_frame_closes_1009(clients: Clients, fmt: Format) -> None:
    w = await clients.login("human", "alice", fmt=fmt)
    await w.send_raw(exact_frame(1025, fmt))
    assert await w.closed() == 1009
    assert not any(f.get("re") == "edge" for f in w.frames)


async def test_default_rate_limit_20_strikes_then_4029(clients: Clients) -> None:
    """Defaults: 100 frames of burst, then `rate_limited` (with re) 20 times, then 4029."""
    alice = await clients.login("human", "alice")
    await alice.send_batch([{"t": "ping", "id": i} for i in range(300)])
    assert await alice.closed(5) == 4029
    replies = alice.frames[1:]
    errors = [f for f in replies if f["t"] == "error"]
    pongs = [f for f in replies if f["t"] == "pong"]
    assert {e["code"] for e in errors} == {"rate_limited"}
    assert len(errors) == 20, len(errors)
    assert 100 <= len(pongs) <= 102, len(pongs)
    assert all(isinstance(e.get("re"), int) for e in errors)
    assert [p["re"] for p in pongs[:100]] == list(range(100))


def deep(levels: int) -> dict[str, Any]:
    """A map nested `levels` deep."""
    out: dict[str, Any] = {}
    for _ in range(levels):
        out = {"k": out}
    return out


BAD_FIELDS: dict[str, dict[str, Any]] = {
    "leave_no_room": {"t": "leave"},
    "typing_no_room": {"t": "typing"},
    "watch_no_room": {"t": "watch"},
    "history_no_room": {"t": "history"},
    "send_no_room": {"t": "send", "text": "x"},
    "room_list": {"t": "join", "room": ["group:g"]},
    "room_kind_uppercase": {"t": "join", "room": "Group:g", "create": True},
    "room_space": {"t": "join", "room": "group: g", "create": True},
    "room_star_join": {"t": "join", "room": "collective:*", "create": True},
    "room_dm_bad_persona": {"t": "send", "room": "dm:bad name", "text": "x"},
    "room_dm_empty_human": {"t": "send", "room": "dm:samantha:", "text": "x"},
    "invite_persona_number": {"t": "invite", "room": "group:g", "persona": 5},
    "invite_persona_too_long": {"t": "invite", "room": "group:g", "persona": "p" * 65},
    "history_before_negative": {"t": "history", "room": "dm:samantha", "before": -1},
    "history_limit_negative": {"t": "history", "room": "dm:samantha", "limit": -5},
    "history_limit_bool": {"t": "history", "room": "dm:samantha", "limit": True},
    "history_limit_float": {"t": "history", "room": "dm:samantha", "limit": 10.0},
    "join_since_bool": {"t": "join", "room": "dm:samantha", "since": True},
    "join_since_float": {"t": "join", "room": "dm:samantha", "since": 2.0},
    "join_since_list": {"t": "join", "room": "dm:samantha", "since": [1]},
    "join_create_number": {"t": "join", "room": "group:g", "create": 1},
    "send_text_null": {"t": "send", "room": "dm:samantha", "text": None},
    "send_text_list": {"t": "send", "room": "dm:samantha", "text": ["x"]},
    "send_cid_list": {"t": "send", "room": "dm:samantha", "text": "x", "cid": [1]},
    "send_cid_empty": {"t": "send", "room": "dm:samantha", "text": "x", "cid": ""},
    "send_stream_number": {"t": "send", "room": "dm:samantha", "text": "x", "stream": 5},
    "send_reply_to_zero": {"t": "send", "room": "dm:samantha", "text": "x", "reply_to": 0},
    "send_reply_to_negative": {"t": "send", "room": "dm:samantha", "text": "x", "reply_to": -3},
    "send_reply_to_float": {"t": "send", "room": "dm:samantha", "text": "x", "reply_to": 1.5},
    "send_meta_string": {"t": "send", "room": "dm:samantha", "text": "x", "meta": "m"},
    "send_meta_too_deep": {"t": "send", "room": "dm:samantha", "text": "x",
                           "meta": deep(20)},
    "delta_text_number": {"t": "delta", "room": "dm:samantha:alice", "stream": "s", "text": 1},
    "delta_stream_number": {"t": "delta", "room": "dm:samantha:alice", "stream": 1, "text": "x"},
    "t_empty": {"t": ""},
    "t_case": {"t": "PING"},
}


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_wrong_fields_are_bad_request_with_re_and_stay_open(clients: Clients,
                                                                   fmt: Format) -> None:
    """Missing fields, wrong types and malformed room ids: `error` bad_request carrying the
    request's `re`, and the connection goes on (one connection for every case)."""
    alice = await clients.login("human", "alice", fmt=fmt)
    wrong: list[tuple[str, Any]] = []
    for i, (case, frame) in enumerate(BAD_FIELDS.items()):
        rid = f"{case}-{i}"
        reply = await alice.request({**frame, "id": rid})
        if reply["t"] != "error" or reply["code"] != "bad_request" or not reply["message"]:
            wrong.append((case, reply))
    assert not wrong, wrong
    await alice.ping()
    assert alice.ws.close_code is None


async def test_msgpack_bin_where_strings_are_due_is_bad_request(clients: Clients) -> None:
    mp = await clients.login("human", "alice", fmt="msgpack")
    cases: dict[str, dict[str, Any]] = {
        "text": {"t": "send", "room": "dm:samantha", "text": b"hi"},
        "room": {"t": "send", "room": b"dm:samantha", "text": "hi"},
        "token": {"t": "hello", "token": b"x"},
        "meta": {"t": "send", "room": "dm:samantha", "text": "hi", "meta": {"b": b"\x00"}},
    }
    for field, frame in cases.items():
        await mp.send_raw(msgpack.packb({**frame, "id": field}, use_bin_type=True))
        err = await mp.recv_until({"re": field})
        assert err["t"] == "error" and err["code"] == "bad_request", (field, err)
    await mp.ping()
    assert (await mp.request({"t": "history", "room": "dm:samantha"}))["msgs"] == []


async def test_msgpack_every_request_type_echoes_re(clients: Clients) -> None:
    """The whole request table in msgpack, with string ids: every reply is a binary frame
    (Wire checks) carrying the id as `re`; events carry none."""
    alice = await clients.login("human", "alice", "Alice", fmt="msgpack")
    sam = await clients.login("persona", "samantha", "Samantha", fmt="msgpack")
    dash = await clients.login("observer", "dash", fmt="msgpack")
    assert (await alice.request({"t": "join", "id": "j", "room": "group:mp", "create": True}))[
        "t"] == "joined"
    ok = await alice.request({"t": "invite", "id": "i", "room": "group:mp", "persona": "samantha"})
    assert ok["t"] == "ok" and ok["re"] == "i"
    assert (await sam.request({"t": "join", "id": "sj", "room": "group:mp", "since": 0}))[
        "re"] == "sj"
    await silent_ok(alice, {"t": "typing", "room": "group:mp"})
    assert (await sam.recv_until("typing"))["from"]["id"] == "alice"
    await silent_ok(sam, {"t": "delta", "room": "group:mp", "stream": "s", "text": "Hi"})
    delta = await alice.recv_until("delta")
    assert delta["stream"] == "s" and "re" not in delta
    ack = await alice.request({"t": "send", "id": "s", "room": "group:mp", "text": "x",
                               "cid": "c", "meta": {"n": 1}})
    assert ack["t"] == "ack" and ack["re"] == "s" and ack["seq"] == 1
    for w in (alice, sam):
        msg = await w.recv_until("msg")
        assert "re" not in msg and msg["mid"] == ack["mid"] and msg["meta"] == {"n": 1}
    hist = await alice.request({"t": "history", "id": "h", "room": "group:mp", "limit": 5})
    assert hist["t"] == "history" and hist["re"] == "h" and len(hist["msgs"]) == 1
    watching = await dash.request({"t": "watch", "id": "w", "room": "collective:*"})
    assert watching == {"t": "watching", "re": "w", "room": "collective:*"}
    left = await alice.request({"t": "leave", "id": "l", "room": "group:mp"})
    assert left == {"t": "left", "re": "l", "room": "group:mp"}
    pong = await alice.request({"t": "ping", "id": "p"})
    assert pong["t"] == "pong" and pong["re"] == "p"


# =========================================================================================
# Verified: dm rooms.
# =========================================================================================


async def test_dm_join_edge_cases(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    never = await join(alice, "dm:samantha", since=0)  # a dm nobody wrote in yet
    assert never["room"] == "dm:samantha:alice"
    assert (never["seq"], never["replayed"], never["gap"]) == (0, 0, False)
    created = await join(alice, "dm:samantha", create=True)  # create is moot for a dm
    assert created["room"] == "dm:samantha:alice"
    for i in range(3):
        await send(alice, "dm:samantha", f"m{i}")
    await alice.collect("msg", 3)  # her own, through her inbox
    await sam.collect("msg", 3)  # the persona's inbox
    ahead = await join(alice, "dm:samantha", since=50)  # a client claiming more than exists
    assert (ahead["seq"], ahead["replayed"], ahead["gap"]) == (3, 0, False)
    level = await join(alice, "dm:samantha:alice", since=3)
    assert (level["seq"], level["replayed"], level["gap"]) == (3, 0, False)
    await alice.quiet({"t": "msg", "seq": 1}, 0.05)
    # a persona replays its own dm in full form, and then gets live ones
    got = await join(sam, "dm:samantha:alice", since=1)
    assert got["replayed"] == 2 and sorted(got["members"]) == ["alice", "samantha"]
    replay = await sam.collect("msg", 2)
    at = sam.frames.index(got)
    assert sam.frames[at + 1: at + 3] == replay and [m["seq"] for m in replay] == [2, 3]


async def test_dm_cid_scope_is_the_stored_room(clients: Clients) -> None:
    """The short and the full form name one room: a cid retried across them is one message;
    the persona's own cid in the same room is another sender's scope."""
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    first = await send(alice, "dm:samantha", "hello", cid="c-1")
    again = await send(alice, "dm:samantha:alice", "hello", cid="c-1")
    assert (again["room"], again["seq"], again["mid"]) == ("dm:samantha:alice", first["seq"],
                                                           first["mid"])
    theirs = await send(sam, "dm:samantha:alice", "hello", cid="c-1")
    assert theirs["seq"] == first["seq"] + 1 and theirs["mid"] != first["mid"]
    hist = await alice.request({"t": "history", "room": "dm:samantha"})
    assert [(m["seq"], m["from"]["id"]) for m in hist["msgs"]] == [(1, "alice"), (2, "samantha")]


async def test_admin_writes_a_dm_both_parties_receive(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    root = await clients.login("admin", "root", "Root")
    ack = await send(root, "dm:samantha:alice", "from the admin")
    for w in (alice, sam):
        msg = await w.recv_until({"t": "msg", "mid": ack["mid"]})
        assert msg["room"] == "dm:samantha:alice"
        assert msg["from"] == {"id": "root", "role": "admin", "name": "Root"}
    joined = await join(root, "dm:samantha:alice", since=0)
    assert joined["replayed"] == 1
    hist = await root.request({"t": "history", "room": "dm:samantha:alice"})
    assert [m["mid"] for m in hist["msgs"]] == [ack["mid"]]


async def test_dm_refusals(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    await refused(alice, {"t": "delta", "room": "dm:samantha", "stream": "s", "text": "x"})
    await refused(bob, {"t": "typing", "room": "dm:samantha:alice"})
    await refused(bob, {"t": "leave", "room": "dm:samantha:alice"})
    await refused(bob, {"t": "join", "room": "dm:samantha:alice"})
    await alice.ping()


async def test_no_duplicate_when_a_connection_is_entitled_twice(clients: Clients) -> None:
    """Inbox + join, watch + join, collective:* + a single watch: each msg once."""
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    await join(alice, "dm:samantha")
    await join(sam, "dm:samantha:alice")
    ack = await send(alice, "dm:samantha", "once")
    for w in (alice, sam):
        assert (await w.recv_until("msg"))["mid"] == ack["mid"]
        await w.quiet("msg", 0.1)
    root = await clients.login("admin", "root")
    dash = await clients.login("observer", "dash")
    await join(sam, "collective:ethics", create=True)
    await join(root, "collective:ethics")
    await root.request({"t": "watch", "room": "collective:*"})
    await dash.request({"t": "watch", "room": "collective:*"})
    await dash.request({"t": "watch", "room": "collective:ethics"})
    ack = await send(sam, "collective:ethics", "once more")
    for w in (root, dash, sam):
        assert (await w.recv_until({"t": "msg", "room": "collective:ethics"}))["mid"] == ack["mid"]
        await w.quiet("msg", 0.1)


# =========================================================================================
# Verified: collective.
# =========================================================================================


async def test_collective_all_presence_tracks_online_personas(clients: Clients) -> None:
    sam = await clients.login("persona", "samantha")
    dash = await clients.login("observer", "dash")
    alice = await clients.login("human", "alice")
    await dash.request({"t": "watch", "room": "collective:*"})
    ada = await clients.login("persona", "ada")
    want = {"t": "presence", "room": "collective:all", "joined": ["ada"], "left": []}
    for w in (sam, dash):
        assert await w.recv_until({"t": "presence", "joined": ["ada"]}) == want
    ada2 = await clients.login("persona", "ada")
    await sam.quiet({"t": "presence", "joined": ["ada"]}, 0.1)  # users, not connections
    joined = await join(sam, "collective:all")
    assert sorted(joined["members"]) == ["ada", "samantha"]
    await ada.close()
    await sam.quiet(lambda f: f["t"] == "presence" and f["left"], 0.1)
    await ada2.close()
    gone = {"t": "presence", "room": "collective:all", "joined": [], "left": ["ada"]}
    for w in (sam, dash):
        assert await w.recv_until({"t": "presence", "left": ["ada"]}) == gone
    assert sorted((await join(sam, "collective:all"))["members"]) == ["samantha"]
    await alice.quiet("presence", 0.05)  # humans are not told


async def test_collective_all_always_exists(clients: Clients) -> None:
    sam = await clients.login("persona", "samantha")
    root = await clients.login("admin", "root")
    dash = await clients.login("observer", "dash")
    empty = await sam.request({"t": "history", "room": "collective:all"})
    assert empty == {"t": "history", "re": empty["re"], "room": "collective:all", "msgs": []}
    assert (await dash.request({"t": "history", "room": "collective:all"}))["msgs"] == []
    assert (await join(root, "collective:all"))["seq"] == 0  # no create needed
    assert (await join(sam, "collective:all", create=True))["room"] == "collective:all"


async def test_collective_all_survives_leave(clients: Clients) -> None:
    """A persona cannot drop out of collective:all: it holds every online persona."""
    sam = await clients.login("persona", "samantha")
    ada = await clients.login("persona", "ada")
    left = await sam.request({"t": "leave", "room": "collective:all"})
    assert left["t"] == "left" and left["room"] == "collective:all"
    ack = await send(ada, "collective:all", "still there?")
    assert (await sam.recv_until("msg"))["mid"] == ack["mid"]
    assert "samantha" in (await join(ada, "collective:all"))["members"]


async def test_collective_watch_single_room_and_refusals(clients: Clients) -> None:
    sam = await clients.login("persona", "samantha")
    root = await clients.login("admin", "root")
    dash = await clients.login("observer", "dash")
    w = await dash.request({"t": "watch", "room": "collective:all"})
    assert w == {"t": "watching", "re": w["re"], "room": "collective:all"}
    await join(sam, "collective:ethics", create=True)
    w = await root.request({"t": "watch", "room": "collective:ethics"})
    assert w["t"] == "watching" and w["room"] == "collective:ethics"
    a1 = await send(sam, "collective:all", "to everyone")
    a2 = await send(sam, "collective:ethics", "to ethics")
    assert (await dash.recv_until("msg"))["mid"] == a1["mid"]
    await dash.quiet({"t": "msg", "room": "collective:ethics"}, 0.1)
    assert (await root.recv_until("msg"))["mid"] == a2["mid"]
    # observers stay read-only in every collective room, collective:all included
    await refused(dash, {"t": "delta", "room": "collective:ethics", "stream": "s", "text": "x"})
    await refused(dash, {"t": "join", "room": "collective:all"})
    await refused(dash, {"t": "invite", "room": "collective:ethics", "persona": "ada"})
    # admins may create a collective; a persona that is not a member must join first
    assert (await join(root, "collective:admins", create=True))["members"] == ["root"]
    ada = await clients.login("persona", "ada")
    await refused(ada, {"t": "send", "room": "collective:ethics", "text": "x"})
    await join(ada, "collective:ethics")
    await send(ada, "collective:ethics", "now a member")


# =========================================================================================
# Verified against a real `os1 serve` process with its defaults.
# =========================================================================================

BANNER = re.compile(r"OS1 hub on (http://\S+)")
PROC_SECRET = "audit-secret-" + "q" * 40


async def test_os1_serve_defaults_on_the_wire(tmp_path: Path) -> None:
    """As an outside suite runs it: env OS1_SECRET/OS1_PERSONAS=none/OS1_DATA_DIR, port 0.
    Welcome carries the default limits; the Bearer header welcomes at once; a socket that
    never says hello gets `error` unauthorized and close 4001 after the default 10 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS1_")}
    env.update(OS1_SECRET=PROC_SECRET, OS1_PERSONAS="none", OS1_DATA_DIR=str(tmp_path),
               OS1_LOG_FORMAT="json")
    os1 = Path(sys.executable).parent / "os1"
    proc = await asyncio.create_subprocess_exec(
        str(os1), "serve", "--port", "0", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while not (m := BANNER.search((await proc.stdout.readline()).decode())):
                pass
        url = m.group(1).replace("http", "ws", 1) + "/ws"

        def mint(role: str, sub: str, name: str | None = None) -> str:
            return auth.mint(PROC_SECRET, sub=sub, role=role, name=name)

        async with Clients(url, mint) as clients:
            idle = await clients.connect()
            t0 = time.monotonic()
            sam = await clients.connect(
                "msgpack", headers={"Authorization": f"Bearer {mint('persona', 'samantha')}"})
            welcome = await sam.recv_until(lambda f: True)
            assert welcome["t"] == "welcome" and "re" not in welcome
            assert welcome["me"] == {"id": "samantha", "role": "persona", "name": "samantha"}
            server = welcome["server"]
            assert (server["max_frame"], server["max_text"]) == (65536, 16384)
            assert isinstance(server["version"], str) and isinstance(server["node"], str)
            plain = await clients.connect(subprotocols=[])
            await plain.send({"t": "hello", "id": "h", "token": mint("human", "alice", "Alice")})
            assert (await plain.recv_until({"re": "h"}))["t"] == "welcome"
            ack = await send(plain, "dm:samantha", "hi")
            msg = await sam.recv_until("msg")
            assert msg["room"] == "dm:samantha:alice" and msg["mid"] == ack["mid"]
            err = await idle.recv_until("error", within=13)
            elapsed = time.monotonic() - t0
            assert err["code"] == "unauthorized" and "re" not in err
            assert await idle.closed() == 4001
            assert 9.0 < elapsed < 12.0, elapsed
            await plain.ping()  # the welcomed ones are untouched
            await sam.ping()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


# =========================================================================================
# Every error frame seen carries a code from the contract's list.
# =========================================================================================


async def test_error_codes_come_from_the_list(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    await join(alice, "group:g", create=True)
    await send(alice, "group:g", "one", cid="k")
    probes = [
        (alice, {"t": "bogus"}, "bad_request"),
        (alice, {"t": "join", "room": "group:missing"}, "not_found"),
        (alice, {"t": "join", "room": "collective:all"}, "forbidden"),
        (alice, {"t": "send", "room": "group:g", "text": "two", "cid": "k"}, "conflict"),
        (alice, {"t": "send", "room": "group:g", "text": "x" * 16385}, "too_large"),
        (sam, {"t": "delta", "room": "dm:samantha:alice", "stream": "s", "text": "x" * 16385},
         "too_large"),
    ]
    for w, frame, code in probes:
        err = await refused(w, frame, code)
        assert err["code"] in ERROR_CODES
    for w in (alice, sam):
        seen = {f["code"] for f in w.frames if f["t"] == "error"}
        assert seen <= ERROR_CODES, seen


# =========================================================================================
# Join/since under a slow store (as with Redis): the replay/live hand-over.
# =========================================================================================


class SlowReads(MemoryEngine):
    """Reads that yield to the loop, so live messages race a join's replay."""

    async def read_after(self, room: str, after: int, limit: int) -> Any:
        await asyncio.sleep(0.15)
        return await super().read_after(room, after, limit)


async def test_join_since_with_live_traffic_racing_a_slow_replay(tmp_path: Path) -> None:
    server = await start_hub(make_settings(tmp_path), SlowReads())
    try:
        async with Clients(server.url, server.token) as clients:
            alice = await clients.login("human", "alice")
            await join(alice, "group:race", create=True)
            for i in range(3):
                await send(alice, "group:race", f"old{i}")
            bob = await clients.login("human", "bob")
            await bob.send({"t": "join", "id": "j", "room": "group:race", "since": 1})
            await asyncio.sleep(0.05)  # bob's join is now reading its replay
            for i in range(3):
                await alice.send({"t": "send", "room": "group:race", "text": f"new{i}"})
            joined = await bob.recv_until({"re": "j"})
            assert joined["t"] == "joined" and joined["gap"] is False
            msgs = await bob.collect("msg", 5)
            assert [m["seq"] for m in msgs] == [2, 3, 4, 5, 6]
            at = bob.frames.index(joined)
            assert all(f["t"] != "msg" for f in bob.frames[:at])  # joined comes first
            await bob.quiet("msg", 0.2)
    finally:
        await server.stop()


class SlowMembers(MemoryEngine):
    """The members read (after a join's replay read) yields to the loop."""

    async def members(self, room: str) -> list[str]:
        await asyncio.sleep(0.15)
        return await super().members(room)


async def test_join_since_beyond_the_end_still_gets_the_live_msgs_of_the_join(tmp_path: Path) -> None:
    """A since past the room's last seq (a client of a store that was reset): joined.seq
    says where the room is, and a msg stored after that, while the join is still being
    answered, is live — delivered, as one sent after the join would be."""
    server = await start_hub(make_settings(tmp_path), SlowMembers())
    try:
        async with Clients(server.url, server.token) as clients:
            alice = await clients.login("human", "alice")
            await join(alice, "group:reset", create=True)
            await send(alice, "group:reset", "old")
            bob = await clients.login("human", "bob")
            await bob.send({"t": "join", "id": "j", "room": "group:reset", "since": 100})
            await asyncio.sleep(0.05)  # bob's join has read its (empty) replay: members now
            await alice.send({"t": "send", "room": "group:reset", "text": "during"})
            joined = await bob.recv_until({"re": "j"})
            assert joined["seq"] == 1 and joined["replayed"] == 0
            assert (await bob.recv_until("msg"))["seq"] == 2
            await alice.send({"t": "send", "room": "group:reset", "text": "after"})
            assert (await bob.recv_until("msg"))["seq"] == 3
    finally:
        await server.stop()
