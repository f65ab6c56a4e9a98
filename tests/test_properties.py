"""Property tests (hypothesis): the pure codec/request layer, then a real hub fed garbage.

The hub tests are sync `@given` tests that run one short asyncio session per example
against a hub started once for the module in a background thread (hypothesis does not mix
with function-scoped async fixtures). Rate limits are raised so examples are not throttled.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import orjson
import pytest
from conftest import HubServer, make_settings, start_hub
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.errors import BadRequest, HubError
from server.protocol import requests as rq
from server.protocol.codec import Format, decode_binary, decode_text, encode, ws_frame

TYPES = ["hello", "join", "leave", "send", "delta", "history", "typing", "invite", "watch",
         "unwatch", "ping"]
ROOMS = ["dm:sam", "dm:sam:alice", "dm:sam:u1", "group:g", "group:h", "collective:all",
         "collective:ops", "collective:*", "nokind", "dm:", "group:a b"]
PROBE = "probe:\x00"  # the id of our own ping; generated maps never use it
PURE = settings(max_examples=300, deadline=None)
LIVE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
msgpack_values = st.recursive(
    scalars | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.binary(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def request_maps(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Maps shaped like requests: a known (or random) `t` and plausible or wild fields."""
    def field(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return plausible | values

    ids = st.integers(-5, 2**40) | st.text(max_size=70)
    return st.fixed_dictionaries(
        {"t": st.sampled_from(TYPES) | st.text(max_size=10)},
        optional={
            "id": field(ids), "room": field(st.sampled_from(ROOMS) | st.text(max_size=20)),
            "text": field(st.text(max_size=40)),
            "cid": field(st.text(max_size=8) | st.integers(-(2**63), 2**63)),
            "since": field(st.integers(-1, 10)), "before": field(st.integers(-1, 10)),
            "limit": field(st.integers(-1, 200)), "create": field(st.booleans()),
            "stream": field(st.text(max_size=8)), "persona": field(st.text(max_size=8)),
            "reply_to": field(st.integers(-1, 5)), "meta": values, "token": field(st.text()),
        },
    ).filter(lambda m: m.get("id") != PROBE)


any_json_map = request_maps(json_values) | st.dictionaries(st.text(max_size=8), json_values,
                                                           max_size=5)


def deep(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(depth):
        node = {"m": node}
    return node


BYTES_META = {"t": "send", "id": 1, "room": "dm:sam", "text": "x", "meta": {"b": b"\x00"}}
BYTES_KEY_META = {"t": "send", "id": 1, "room": "dm:sam", "text": "x", "meta": {b"k": 1}}
DEEP_META = {"t": "send", "id": 1, "room": "dm:sam", "text": "x", "meta": deep(300)}


# ---- (a) pure -------------------------------------------------------------------------

@PURE
@given(request_maps(msgpack_values) | st.dictionaries(st.text(max_size=8), msgpack_values)
       .map(lambda d: {**d, "t": d.get("t") if isinstance(d.get("t"), str) else "x"}))
def test_parse_request_returns_a_request_or_raises_hub_error(frame: dict[str, Any]) -> None:
    try:
        req = rq.parse_request(frame, max_text=30)
    except HubError:
        return
    assert isinstance(req, rq.Request)  # type: ignore[arg-type]
    assert type(req).__name__.lower() == frame["t"]
    assert req.id == frame.get("id")


@PURE
@given(st.text())
def test_decode_text_returns_a_map_or_raises_bad_request(data: str) -> None:
    try:
        frame = decode_text(data)
    except BadRequest:
        return
    assert isinstance(frame, dict) and isinstance(frame["t"], str)


@PURE
@given(st.binary() | st.builds(msgpack.packb, msgpack_values | request_maps(msgpack_values)))
def test_decode_binary_returns_a_map_or_raises_bad_request(data: bytes) -> None:
    try:
        frame = decode_binary(data)
    except BadRequest:
        return
    assert isinstance(frame, dict) and isinstance(frame["t"], str)


@PURE
@given(request_maps(json_values).map(orjson.dumps).map(bytes.decode))
def test_decode_text_of_a_json_map_with_t_is_that_map(data: str) -> None:
    assert decode_text(data) == orjson.loads(data)


@PURE
@given(st.sampled_from([0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537]) | st.integers(0, 70000),
       st.sampled_from(list(Format)))
def test_ws_frame_length_header_parses_back(size: int, fmt: Format) -> None:
    data = ws_frame(b"\xab" * size, fmt)
    assert data[0] == 0x80 | (0x1 if fmt is Format.JSON else 0x2)
    n, offset = data[1], 2
    assert n & 0x80 == 0  # unmasked
    if n == 126:
        n, offset = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        n, offset = int.from_bytes(data[2:10], "big"), 10
    assert n == size == len(data) - offset
    assert offset == (2 if size <= 125 else 4 if size <= 65535 else 10)  # shortest form (RFC 6455)


@PURE
@given(request_maps(msgpack_values).map(lambda m: {**m, "t": "send"}))
@example(BYTES_META)
@example(BYTES_KEY_META)
@example(DEEP_META)
def test_an_accepted_send_can_be_delivered_in_both_formats(frame: dict[str, Any]) -> None:
    # The hub stores meta as given and sends it to every member in the member's format,
    # so whatever parse_request accepts must encode as JSON and as msgpack.
    try:
        req = rq.parse_request(frame, max_text=30)
    except HubError:
        return
    assert isinstance(req, rq.Send)
    stored = {"t": "msg", "room": "dm:sam:alice", "seq": 1, "mid": "m", "text": req.text,
              "from": {"id": "alice", "role": "human", "name": "A"}, "ts": 1, "meta": req.meta}
    for fmt in Format:
        encode(stored, fmt)


# ---- (b) a real hub ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hub-loop", daemon=True)
    thread.start()
    conf = make_settings(tmp_path_factory.mktemp("hub"), rate_limit=10000, rate_burst=10000)
    server = asyncio.run_coroutine_threadsafe(start_hub(conf), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


_users = itertools.count()


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        data = await ws.recv()
    frame = orjson.loads(data)
    assert isinstance(frame, dict) and isinstance(frame.get("t"), str), frame
    return frame


async def login(hub: HubServer, role: str, user: str) -> ClientConnection:
    ws = await connect(hub.url, open_timeout=5, close_timeout=2)
    await ws.send(orjson.dumps({"t": "hello", "id": 0, "token": hub.token(role, user)}).decode())
    welcome = await recv(ws)
    assert welcome["t"] == "welcome", welcome
    return ws


async def exchange(hub: HubServer, role: str, payload: str | bytes) -> list[dict[str, Any]]:
    """Send `payload` after welcome, then a ping; the frames before its pong."""
    ws = await login(hub, role, f"u{next(_users)}")
    frames: list[dict[str, Any]] = []
    try:
        await ws.send(payload)
        await ws.send(orjson.dumps({"t": "ping", "id": PROBE}).decode())
        while (frame := await recv(ws)) != {**frame, "t": "pong", "re": PROBE}:
            frames.append(frame)
    except ConnectionClosed as e:
        pytest.fail(f"the hub closed the connection ({e}) after {payload[:200]!r}; saw {frames}")
    finally:
        await ws.close()
    fresh = await login(hub, "human", "fresh")  # the hub is still up
    await fresh.close()
    return frames


def check_session(hub: HubServer, role: str, payload: str | bytes) -> None:
    frames = asyncio.run(exchange(hub, role, payload))
    if role != "admin":  # an admin's typing/delta in a room it did not join is silent
        assert frames, f"no reply, event or error for {payload[:200]!r}"
    for f in frames:
        assert not (f["t"] == "error" and f.get("code") == "internal"), f


roles = st.sampled_from(["human", "persona", "observer", "admin"])


@LIVE
@given(payload=st.binary(max_size=300)
       | st.builds(msgpack.packb, request_maps(msgpack_values) | msgpack_values),
       role=roles)
@example(payload=msgpack.packb(BYTES_META), role="human")
@example(payload=msgpack.packb(BYTES_KEY_META), role="human")
def test_any_binary_frame_gets_an_answer_and_the_connection_survives(
        live_hub: HubServer, payload: bytes, role: str) -> None:
    check_session(live_hub, role, payload)


@LIVE
@given(payload=st.text(st.characters(exclude_categories=["Cs"]), max_size=300), role=roles)
def test_any_text_frame_gets_an_answer_and_the_connection_survives(
        live_hub: HubServer, payload: str, role: str) -> None:
    check_session(live_hub, role, payload)


@LIVE
@given(frame=any_json_map, role=roles)
@example(frame=DEEP_META, role="human")
def test_any_json_map_gets_an_answer_and_the_connection_survives(
        live_hub: HubServer, frame: dict[str, Any], role: str) -> None:
    check_session(live_hub, role, json.dumps(frame))  # stdlib: orjson refuses DEEP_META


async def first_frame(hub: HubServer, payload: str | bytes) -> tuple[list[dict[str, Any]], int]:
    async with connect(hub.url, open_timeout=5, close_timeout=2) as ws:
        await ws.send(payload)
        frames: list[dict[str, Any]] = []
        try:
            while True:
                frames.append(await recv(ws))
        except ConnectionClosed as e:
            return frames, e.rcvd.code if e.rcvd else -1
    raise AssertionError("unreachable")


@settings(max_examples=30, deadline=None)
@given(payload=st.binary(max_size=100) | st.text(max_size=100)
       | any_json_map.filter(lambda m: m.get("t") != "hello").map(orjson.dumps)
       | request_maps(json_values).map(lambda m: {**m, "t": "hello"}).map(orjson.dumps))
def test_anything_but_a_valid_hello_first_is_unauthorized_4001(
        live_hub: HubServer, payload: str | bytes) -> None:
    if isinstance(payload, bytes) and payload.startswith(b"{"):
        payload = payload.decode()  # JSON maps go as text frames
    frames, code = asyncio.run(first_frame(live_hub, payload))
    assert [f["t"] for f in frames] == ["error"], frames
    assert frames[0]["code"] == "unauthorized"
    assert code == 4001
