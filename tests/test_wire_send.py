"""send/ack/msg on the wire: shapes, gapless seq under concurrent senders, cid idempotency,
history paging, size limits, bad frames, msgpack, request ids."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack
import orjson
import pytest
from wire import Clients, Wire, refused, send, settings_for, with_settings

from server.config import Settings


@pytest.fixture
def hub_settings(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    return settings_for(request, tmp_path)


async def test_ack_and_msg_shape(clients: Clients) -> None:
    alice = await clients.login("human", "alice", "Alice")
    await alice.request({"t": "join", "room": "group:g", "create": True})
    before = int(time.time() * 1000)
    frame = {"t": "send", "id": "s-1", "room": "group:g", "text": "héllo ✓", "cid": "c-1",
             "reply_to": "m-0", "stream": "st-1", "meta": {"lang": "en", "n": [1, 2]}}
    await alice.send(frame)
    ack = await alice.recv_until({"t": "ack"})
    msg = await alice.recv_until({"t": "msg"})
    assert set(ack) >= {"t", "re", "room", "seq", "mid"}
    assert ack["re"] == "s-1" and ack["room"] == "group:g" and ack["seq"] == 1
    assert isinstance(ack["mid"], str) and ack["mid"]
    assert "re" not in msg
    assert msg["mid"] == ack["mid"] and msg["seq"] == 1 and msg["room"] == "group:g"
    assert msg["from"] == {"id": "alice", "role": "human", "name": "Alice"}
    assert msg["text"] == "héllo ✓" and msg["cid"] == "c-1" and msg["reply_to"] == "m-0"
    assert msg["stream"] == "st-1" and msg["meta"] == {"lang": "en", "n": [1, 2]}
    assert before - 5 <= msg["ts"] <= int(time.time() * 1000) + 5
    ack2 = await send(alice, "group:g", "plain", reply_to=1)
    plain = await alice.recv_until({"t": "msg", "seq": 2})
    assert ack2["seq"] == 2 and ack2["mid"] != ack["mid"]
    assert plain["reply_to"] == 1
    assert not {"cid", "stream", "meta"} & set(plain), plain


async def test_a_sender_gets_its_own_msg_once_joined_or_not(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    await alice.request({"t": "join", "room": "group:g", "create": True})
    await alice.request({"t": "invite", "room": "group:g", "persona": "samantha"})
    sam = await clients.login("persona", "samantha")  # a member by invitation, not joined
    admin = await clients.login("admin", "root")  # may write anywhere, not joined
    for sender, text in ((sam, "hello from samantha"), (admin, "hello from the admin"),
                         (alice, "hello from alice")):
        ack = await send(sender, "group:g", text)
        own = await sender.recv_until({"t": "msg", "mid": ack["mid"]})
        assert own["text"] == text and own["seq"] == ack["seq"]
        if sender is not alice:  # the room hears it too
            assert (await alice.recv_until({"t": "msg", "mid": ack["mid"]}))["seq"] == ack["seq"]
    for w in (alice, sam, admin):  # and only once each
        await w.quiet("msg", 0.2)
        mids = [f["mid"] for f in w.frames if f["t"] == "msg"]
        assert len(mids) == len(set(mids)), mids


@with_settings(rate_limit=1000.0, rate_burst=1000)
async def test_gapless_seq_with_concurrent_senders(clients: Clients) -> None:
    senders = [await clients.login("human", f"user{i}") for i in range(5)]
    watcher = await clients.login("persona", "samantha")
    await senders[0].request({"t": "join", "room": "group:busy", "create": True})
    for w in (*senders[1:], watcher):
        await w.request({"t": "join", "room": "group:busy"})
    per = 40

    async def blast(i: int, w: Wire) -> list[dict[str, Any]]:
        for k in range(per):  # pipelined: no waiting for acks in between
            await w.send({"t": "send", "id": k, "room": "group:busy", "text": f"{i}:{k}",
                          "cid": f"c{k}"})
        return [await w.recv_until({"t": "ack", "re": k}, 10) for k in range(per)]

    acks = await asyncio.gather(*(blast(i, w) for i, w in enumerate(senders)))
    total = per * len(senders)
    assert sorted(a["seq"] for batch in acks for a in batch) == list(range(1, total + 1))
    for batch in acks:  # one sender's messages are numbered in the order it sent them
        seqs = [a["seq"] for a in batch]
        assert seqs == sorted(seqs)
    for w in (*senders, watcher):
        msgs = await w.collect("msg", total, within=10)
        assert [m["seq"] for m in msgs] == list(range(1, total + 1))  # in order, no gap, no dup
        await w.quiet("msg", 0.05)
    by_seq = {a["seq"]: a["mid"] for batch in acks for a in batch}
    assert all(by_seq[m["seq"]] == m["mid"] for m in msgs)


async def test_cid_idempotency(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    await alice.request({"t": "join", "room": "group:g", "create": True})
    await bob.request({"t": "join", "room": "group:g"})
    first = await send(alice, "group:g", "hello", cid="c-1")
    again = await send(alice, "group:g", "hello", cid="c-1")
    assert (again["seq"], again["mid"], again["room"]) == (first["seq"], first["mid"], "group:g")
    assert (await bob.recv_until("msg"))["mid"] == first["mid"]
    await bob.quiet("msg", 0.15)  # not posted twice
    conflict = await refused(alice, {"t": "send", "room": "group:g", "text": "other", "cid": "c-1"},
                           "conflict")
    assert "re" in conflict
    # the scope is room x sender: bob's c-1 and alice's c-1 in another room are new messages
    theirs = await send(bob, "group:g", "hello", cid="c-1")
    assert theirs["seq"] == 2 and theirs["mid"] != first["mid"]
    elsewhere = await send(alice, "dm:samantha", "hello", cid="c-1")
    assert elsewhere["seq"] == 1 and elsewhere["mid"] != first["mid"]
    hist = await alice.request({"t": "history", "room": "group:g"})
    assert [(m["seq"], m["from"]["id"]) for m in hist["msgs"]] == [(1, "alice"), (2, "bob")]
    # a retry from another connection of the same sender is still the same message
    alice2 = await clients.login("human", "alice")
    retry = await send(alice2, "group:g", "hello", cid="c-1")
    assert retry["mid"] == first["mid"]


async def test_cid_retry_while_first_is_in_flight(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    await alice.request({"t": "join", "room": "group:g", "create": True})
    for i in range(5):  # the same send, five times back to back
        await alice.send({"t": "send", "id": i, "room": "group:g", "text": "once", "cid": "dup"})
    acks = [await alice.recv_until({"t": "ack", "re": i}) for i in range(5)]
    assert {(a["seq"], a["mid"]) for a in acks} == {(1, acks[0]["mid"])}
    await alice.recv_until("msg")
    await alice.quiet("msg", 0.1)


@with_settings(cid_ttl=0.3)
async def test_cid_expires_after_its_window(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    first = await send(alice, "dm:samantha", "hi", cid="c")
    assert (await send(alice, "dm:samantha", "hi", cid="c"))["mid"] == first["mid"]
    await asyncio.sleep(0.4)  # past the window (10 minutes by default; 0.3 s here)
    later = await send(alice, "dm:samantha", "hi", cid="c")
    assert later["seq"] == 2 and later["mid"] != first["mid"]


@with_settings(rate_limit=1000.0, rate_burst=1000)
async def test_history_paging(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    await alice.request({"t": "join", "room": "group:h", "create": True})
    empty = await alice.request({"t": "history", "room": "group:h"})
    assert empty["t"] == "history" and empty["room"] == "group:h" and empty["msgs"] == []
    for i in range(1, 131):
        await alice.send({"t": "send", "id": i, "room": "group:h", "text": f"m{i}"})
    await alice.recv_until({"t": "ack", "re": 130}, 10)

    async def page(**q: Any) -> list[int]:
        reply = await alice.request({"t": "history", "room": "group:h", **q})
        assert reply["t"] == "history" and reply["room"] == "group:h", reply
        assert all(m["t"] == "msg" and m["text"] == f"m{m['seq']}" for m in reply["msgs"])
        return [m["seq"] for m in reply["msgs"]]

    assert await page() == list(range(81, 131))  # default 50, newest, oldest first
    assert await page(limit=500) == list(range(31, 131))  # clamped to 100
    assert await page(limit=101) == list(range(31, 131))
    assert await page(limit=100) == list(range(31, 131))
    assert await page(limit=0) == [130]  # clamped up to 1
    assert await page(before=31, limit=10) == list(range(21, 31))
    assert await page(before=21) == list(range(1, 21))
    assert await page(before=1) == []
    assert await page(before=1000, limit=3) == [128, 129, 130]
    # paging back from the newest covers everything once
    seen: list[int] = []
    before: int | None = None
    while True:
        got = await page(**({} if before is None else {"before": before}), limit=40)
        if not got:
            break
        seen = got + seen
        before = got[0]
    assert seen == list(range(1, 131))


@with_settings(max_text=10)
async def test_too_large_text(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    assert alice.welcome is not None and alice.welcome["server"]["max_text"] == 10
    err = await refused(alice, {"t": "send", "room": "dm:samantha", "text": "x" * 11}, "too_large")
    assert "re" in err
    assert (await send(alice, "dm:samantha", "x" * 10))["seq"] == 1
    assert (await send(alice, "dm:samantha", "é" * 10))["seq"] == 2  # characters, not bytes
    await refused(alice, {"t": "send", "room": "dm:samantha", "text": "😀" * 11}, "too_large")
    await alice.ping()
    hist = await alice.request({"t": "history", "room": "dm:samantha"})
    assert len(hist["msgs"]) == 2


@with_settings(max_frame=1024)
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
async def test_frame_over_max_frame_closes_1009(clients: Clients, fmt: Any) -> None:
    alice = await clients.login("human", "alice", fmt=fmt)
    assert alice.welcome is not None and alice.welcome["server"]["max_frame"] == 1024
    await send(alice, "dm:samantha", "y" * 900)  # under the bound: fine
    await alice.send({"t": "send", "room": "dm:samantha", "text": "z" * 2000})
    assert await alice.closed() == 1009
    assert not any(f["t"] == "msg" and f["text"].startswith("z") for f in alice.frames)


@with_settings(max_frame=1024, max_text=900)
async def test_history_page_may_exceed_max_frame(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    for i in range(6):
        await send(alice, "dm:samantha", str(i) * 900)
    hist = await alice.request({"t": "history", "room": "dm:samantha"})
    assert [m["text"][0] for m in hist["msgs"]] == list("012345")  # ~6 kB in one frame
    await alice.ping()


BAD_FRAMES: dict[str, str | bytes] = {
    "not_json": "{nope",
    "json_array": "[1, 2]",
    "json_number": "42",
    "json_null": "null",
    "missing_t": '{"id": 1}',
    "t_number": '{"t": 5, "id": 1}',
    "t_null": '{"t": null}',
    "unknown_t": '{"t": "shout", "id": 3}',
    "send_no_text": '{"t": "send", "id": 4, "room": "group:g"}',
    "send_text_number": '{"t": "send", "id": 4, "room": "group:g", "text": 7}',
    "send_room_number": '{"t": "send", "id": 5, "room": 5, "text": "x"}',
    "send_meta_list": '{"t": "send", "id": 9, "room": "dm:samantha", "text": "x", "meta": [1]}',
    "send_reply_to_bool": '{"t": "send", "id": 9, "room": "dm:samantha", "text": "x", "reply_to": true}',
    "send_cid_too_long": '{"t": "send", "id": 9, "room": "dm:samantha", "text": "x", "cid": "'
    + "c" * 65 + '"}',
    "join_no_room": '{"t": "join", "id": 6}',
    "join_since_string": '{"t": "join", "id": 6, "room": "group:g", "since": "3"}',
    "join_since_negative": '{"t": "join", "id": 6, "room": "group:g", "since": -1}',
    "join_create_string": '{"t": "join", "id": 8, "room": "group:g", "create": "yes"}',
    "history_limit_string": '{"t": "history", "id": 7, "room": "dm:samantha", "limit": "x"}',
    "history_before_float": '{"t": "history", "id": 7, "room": "dm:samantha", "before": 1.5}',
    "delta_no_stream": '{"t": "delta", "id": 7, "room": "dm:samantha:alice", "text": "x"}',
    "invite_no_persona": '{"t": "invite", "id": 7, "room": "group:g"}',
    "room_bad_kind": '{"t": "send", "id": 7, "room": "chat:x", "text": "x"}',
    "room_no_kind": '{"t": "join", "id": 7, "room": "lobby", "create": true}',
    "room_empty_name": '{"t": "join", "id": 7, "room": "group:", "create": true}',
    "room_bad_name": '{"t": "join", "id": 7, "room": "group:bad name", "create": true}',
    "room_name_too_long": '{"t": "join", "id": 7, "room": "group:' + "g" * 65 + '", "create": true}',
    "room_dm_empty": '{"t": "send", "id": 7, "room": "dm:", "text": "x"}',
    "room_dm_three_parts": '{"t": "send", "id": 7, "room": "dm:a:b:c", "text": "x"}',
    "bad_msgpack": b"\xc1",
    "msgpack_list": msgpack.packb([1, 2]),
    "msgpack_no_t": msgpack.packb({"id": 1}),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frame_is_bad_request_and_stays_open(clients: Clients, case: str) -> None:
    alice = await clients.login("human", "alice")
    raw = BAD_FRAMES[case]
    await alice.send_raw(raw)
    err = await alice.recv_until("error")
    assert err["code"] == "bad_request", err
    try:
        frame = orjson.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw)
    except ValueError:
        frame = None
    if isinstance(frame, dict) and isinstance(frame.get("t"), str) and "id" in frame:
        assert err.get("re") == frame["id"], err  # a request with an id gets re when refused
    elif frame is None:
        assert "re" not in err, err
    await alice.ping()  # the connection is still fine


async def test_msgpack_round_trip(hub: Any, clients: Clients) -> None:
    mp = await clients.login("human", "alice", fmt="msgpack")
    assert mp.ws.subprotocol == "os1.v1.msgpack"
    js = await clients.login("persona", "samantha")
    ack = await send(mp, "dm:samantha", "über", meta={"k": [1, {"x": None}]}, reply_to=3)
    for w in (mp, js):  # mp decodes binary frames only, js text frames only (Wire checks)
        msg = await w.recv_until("msg")
        assert msg["mid"] == ack["mid"] and msg["text"] == "über"
        assert msg["meta"] == {"k": [1, {"x": None}]} and msg["reply_to"] == 3
    reply = await send(js, "dm:samantha:alice", "ja")
    assert (await mp.recv_until("msg"))["mid"] == reply["mid"]
    # a text frame on a msgpack connection is read as JSON; answered in msgpack
    await mp.send_raw('{"t": "ping", "id": "text-on-msgpack"}')
    assert (await mp.recv_until({"re": "text-on-msgpack"}))["t"] == "pong"
    # and a binary frame on a JSON connection is read as msgpack; answered in JSON
    await js.send_raw(msgpack.packb({"t": "ping", "id": "bin-on-json"}))
    assert (await js.recv_until({"re": "bin-on-json"}))["t"] == "pong"
    hist = await mp.request({"t": "history", "room": "dm:samantha"})
    assert [m["text"] for m in hist["msgs"]] == ["über", "ja"]


@pytest.mark.parametrize("rid", [0, 1, -5, 2**53, "", "a", "x" * 64, "ünï", "12"])
async def test_request_id_forms_echoed(clients: Clients, rid: Any) -> None:
    alice = await clients.login("human", "alice")
    await alice.send({"t": "ping", "id": rid})
    pong = await alice.recv_until("pong")
    assert pong["re"] == rid and type(pong["re"]) is type(rid)
    err = await alice.request({"t": "send", "id": rid, "room": "group:none", "text": "x"})
    assert err["t"] == "error" and err["re"] == rid


@pytest.mark.parametrize("rid", ["x" * 65, 1.5, True, None, [1], {"a": 1}])
async def test_bad_request_ids(clients: Clients, rid: Any) -> None:
    alice = await clients.login("human", "alice")
    await alice.send({"t": "ping", "id": rid})
    err = await alice.recv_until(lambda f: f["t"] in ("error", "pong"))
    assert err["t"] == "error" and err["code"] == "bad_request", err
    assert "re" not in err
    await alice.ping()
