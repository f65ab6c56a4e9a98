"""Sans-I/O pieces of the client: codecs, close codes, retry policy, backoff.

Nothing here touches a socket, so all of it is unit-tested directly.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from typing import Any, Literal

import msgpack
import orjson

Format = Literal["json", "msgpack"]
Frame = dict[str, Any]

SUBPROTOCOLS: dict[str, str] = {"json": "os1.v1.json", "msgpack": "os1.v1.msgpack"}

# Requests whose reply the client waits for and that the hub makes idempotent (send via
# its cid) or that are harmless to repeat, so they are re-sent after a reconnect.
RETRYABLE: frozenset[str] = frozenset(
    {"send", "join", "history", "leave", "watch", "invite", "ping"}
)


class CloseCode(enum.IntEnum):
    """WebSocket close codes the hub uses (application codes in 4000-4999)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # node draining: reconnect
    ABNORMAL = 1006  # no close frame (network loss, crash)
    MESSAGE_TOO_BIG = 1009
    UNAUTHORIZED = 4001
    FORBIDDEN = 4003
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029


FATAL_CLOSE_CODES: frozenset[int] = frozenset({CloseCode.UNAUTHORIZED, CloseCode.FORBIDDEN})


def is_reconnectable(code: int | None) -> bool:
    """Whether a connection closed with ``code`` (None: no close frame) may be resumed."""
    return code not in FATAL_CLOSE_CODES


class DecodeError(ValueError):
    """A frame from the hub that is not a map with a string ``t``."""


class Codec:
    """Encodes frames for one subprotocol; decodes either kind by WebSocket frame type."""

    def __init__(self, fmt: Format) -> None:
        if fmt not in SUBPROTOCOLS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(SUBPROTOCOLS)}")
        self.fmt: Format = fmt
        self.subprotocol = SUBPROTOCOLS[fmt]

    def encode(self, frame: Frame) -> str | bytes:
        if self.fmt == "msgpack":
            data: bytes = msgpack.packb(frame, use_bin_type=True)
            return data
        return orjson.dumps(frame).decode()

    @staticmethod
    def decode(data: str | bytes) -> Frame:
        """Text frames are JSON, binary frames msgpack, whatever was negotiated."""
        try:
            obj = orjson.loads(data) if isinstance(data, str) else msgpack.unpackb(
                data, raw=False, strict_map_key=False
            )
        except (orjson.JSONDecodeError, ValueError, msgpack.UnpackException) as exc:
            raise DecodeError(f"undecodable frame: {exc}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
            raise DecodeError("frame is not a map with a string 't'")
        return obj

    @staticmethod
    def size(data: str | bytes) -> int:
        return len(data.encode() if isinstance(data, str) else data)


def backoff_delays(
    low: float, high: float, rng: random.Random | None = None
) -> Iterator[float]:
    """Exponential backoff with "equal jitter": attempt n waits in [cap/2, cap],
    cap = min(high, low * 2**n), so a fleet of clients does not reconnect in lockstep."""
    if low <= 0 or high < low:
        raise ValueError("backoff needs 0 < low <= high")
    rand = rng or random.Random()
    cap = low
    while True:
        yield max(low, cap / 2 + rand.uniform(0, cap / 2))
        cap = min(high, cap * 2)
