"""server.protocol.codec: the two wire formats and the server-side frame bytes."""

from __future__ import annotations

import msgpack
import orjson
import pytest

from server.errors import BadRequest
from server.protocol.codec import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    SUBPROTOCOLS,
    Format,
    decode_binary,
    decode_text,
    encode,
    encode_frame,
    format_for,
    ws_frame,
)

FRAME = {"t": "msg", "room": "group:g", "seq": 3, "text": "héllo ✓", "meta": {"k": [1, None, True]}}


def parse_ws_frame(data: bytes) -> tuple[int, int, bytes]:
    """(first byte, payload length, payload) of one unmasked server frame, checked strictly."""
    head, second = data[0], data[1]
    assert second & 0x80 == 0, "server frames must not be masked"
    n, offset = second & 0x7F, 2
    if n == 126:
        n, offset = int.from_bytes(data[2:4], "big"), 4
        assert n >= 126, "the 16-bit length form is for 126..65535 only"
    elif n == 127:
        n, offset = int.from_bytes(data[2:10], "big"), 10
        assert n >= 65536, "the 64-bit length form is for 65536 and up only"
    payload = data[offset:]
    assert len(payload) == n
    return head, n, payload


def test_subprotocol_names_are_the_contract() -> None:
    assert SUBPROTOCOL_JSON == "os1.v1.json"
    assert SUBPROTOCOL_MSGPACK == "os1.v1.msgpack"
    assert set(SUBPROTOCOLS) == {"os1.v1.json", "os1.v1.msgpack"}


@pytest.mark.parametrize(
    ("offered", "fmt"),
    [(None, Format.JSON), ("os1.v1.json", Format.JSON), ("os1.v1.msgpack", Format.MSGPACK),
     ("something-else", Format.JSON)],
)
def test_format_for_subprotocol(offered: str | None, fmt: Format) -> None:
    assert format_for(offered) is fmt


def test_encode_json_is_utf8_json() -> None:
    assert orjson.loads(encode(FRAME, Format.JSON)) == FRAME


def test_encode_msgpack_round_trips() -> None:
    assert msgpack.unpackb(encode(FRAME, Format.MSGPACK), raw=False) == FRAME


def test_encode_msgpack_uses_bin_type_for_bytes() -> None:
    packed = encode({"t": "x", "b": b"\x00\xff"}, Format.MSGPACK)
    assert msgpack.unpackb(packed, raw=False)["b"] == b"\x00\xff"


@pytest.mark.parametrize(("fmt", "opcode"), [(Format.JSON, 0x1), (Format.MSGPACK, 0x2)])
def test_ws_frame_is_final_with_the_format_opcode(fmt: Format, opcode: int) -> None:
    head, n, payload = parse_ws_frame(ws_frame(b"abc", fmt))
    assert head == 0x80 | opcode
    assert (n, payload) == (3, b"abc")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_ws_frame_length_forms(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = ws_frame(payload, Format.MSGPACK)
    header = len(data) - size
    assert header == (2 if size < 126 else 4 if size < 65536 else 10)
    assert parse_ws_frame(data) == (0x82, size, payload)


def test_encode_frame_is_ws_frame_of_encode() -> None:
    for fmt in Format:
        assert encode_frame(FRAME, fmt) == ws_frame(encode(FRAME, fmt), fmt)


# ---- decoding ---------------------------------------------------------------------------

def test_decode_text_returns_the_map() -> None:
    assert decode_text('{"t":"ping","id":7}') == {"t": "ping", "id": 7}


def test_decode_binary_returns_the_map() -> None:
    assert decode_binary(msgpack.packb({"t": "ping", "id": "x"})) == {"t": "ping", "id": "x"}


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{", '{"t": "ping"', "[]", '["t"]', "42", '"t"', "null", "{}",
     '{"t": 1}', '{"t": null}', '{"t": ["ping"]}', '{"id": 1}', '"\\ud800"', "\ud800"],
)
def test_decode_text_rejects_with_bad_request(text: str) -> None:
    with pytest.raises(BadRequest):
        decode_text(text)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"\x81", msgpack.packb([1, 2]), msgpack.packb("t"), msgpack.packb({}),
     msgpack.packb({"t": 5}), msgpack.packb({"t": b"ping"}), msgpack.packb({1: "x"}),
     msgpack.packb({"t": "ping"}) + b"\x00", b"\xa2\xff\xfe"],
)
def test_decode_binary_rejects_with_bad_request(data: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_binary(data)


def test_decode_binary_lets_other_keys_through_so_the_id_can_be_echoed() -> None:
    assert decode_binary(msgpack.packb({1: "x", "t": "ping", "id": 7})) == {1: "x", "t": "ping", "id": 7}
    with pytest.raises(BadRequest) as refused:
        decode_binary(msgpack.packb({1: "x", "id": 7}))
    assert refused.value.rid == 7


def test_bad_request_messages_say_what_is_wrong() -> None:
    with pytest.raises(BadRequest, match="JSON"):
        decode_text("{")
    with pytest.raises(BadRequest, match="msgpack"):
        decode_binary(b"\xc1")
    with pytest.raises(BadRequest, match="map"):
        decode_text("[]")
    with pytest.raises(BadRequest, match="'t'"):
        decode_text('{"t": 3}')
