"""Wire codecs: JSON (text frames) and msgpack (binary frames), and server-side frame bytes.

Server-to-client WebSocket frames are unmasked, so the exact bytes of a frame are the same
for every recipient: fan-out builds them once per wire format and writes them to many sockets.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgpack
import orjson

from server.errors import BadRequest
from server.protocol.requests import request_id

SUBPROTOCOL_JSON = "os1.v1.json"
SUBPROTOCOL_MSGPACK = "os1.v1.msgpack"
SUBPROTOCOLS = (SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK)

_OP_TEXT = 0x1
_OP_BINARY = 0x2
_FIN = 0x80


class Format(StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


def format_for(subprotocol: str | None) -> Format:
    return Format.MSGPACK if subprotocol == SUBPROTOCOL_MSGPACK else Format.JSON


def encode(frame: dict[str, Any], fmt: Format) -> bytes:
    """The payload of one frame (UTF-8 JSON or msgpack)."""
    if fmt is Format.JSON:
        return orjson.dumps(frame)
    return msgpack.packb(frame, use_bin_type=True)  # type: ignore[no-any-return]


def ws_frame(payload: bytes, fmt: Format) -> bytes:
    """A complete unmasked, unfragmented WebSocket frame carrying `payload`."""
    head = _FIN | (_OP_TEXT if fmt is Format.JSON else _OP_BINARY)
    n = len(payload)
    if n < 126:
        return bytes((head, n)) + payload
    if n < 65536:
        return bytes((head, 126)) + n.to_bytes(2, "big") + payload
    return bytes((head, 127)) + n.to_bytes(8, "big") + payload


def encode_frame(frame: dict[str, Any], fmt: Format) -> bytes:
    return ws_frame(encode(frame, fmt), fmt)


def decode_text(data: str | bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"frame is not valid JSON: {e.msg}") from None
    return _envelope(obj)


def decode_binary(data: bytes) -> dict[str, Any]:
    try:
        # Bounded by max_frame already. Keys that are not strings are let through here so
        # that the frame's id can still be echoed; requests refuse them where they matter.
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise BadRequest(f"frame is not valid msgpack: {type(e).__name__}") from None
    return _envelope(obj)


def _envelope(obj: object) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BadRequest("a frame must be a map (JSON object / msgpack map)")
    if not isinstance(obj.get("t"), str):
        raise BadRequest("a frame must have a string 't' naming its type", rid=request_id(obj))
    return obj
