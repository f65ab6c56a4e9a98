"""A lean WebSocket client for load generation: frames are counted from their headers and
only a sample is decoded, so the generator costs far less per delivery than the hub.

Clients must mask their frames; an all-zero mask key is valid and makes masking free.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable

import orjson

_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _ZERO_MASK + payload


class RawClient(asyncio.Protocol):
    """Counts frames; decodes every frame while `decode` is true (hello/join and samples)."""

    def __init__(self, host: str, port: int, on_msg: Callable[[dict], None] | None = None) -> None:
        self.host, self.port = host, port
        self.on_msg = on_msg
        self.decode = True
        self.frames = 0
        self.reads = 0  # data_received calls: frames / reads shows how the hub batches writes
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.replies: asyncio.Queue[dict] = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: os1.v1.json\r\n\r\n"
        )
        transport.write(req.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(buf[:200]).decode(errors="replace")))
                return
            del buf[: end + 4]
            self._upgraded = True
            self.opened.set_result(None)
        self._parse()

    def _parse(self) -> None:
        buf = self._buf
        off = 0
        size = len(buf)
        frames = 0
        while size - off >= 2:
            b1 = buf[off + 1] & 0x7F
            if b1 < 126:
                start, n = off + 2, b1
            elif b1 == 126:
                if size - off < 4:
                    break
                start, n = off + 4, int.from_bytes(buf[off + 2 : off + 4], "big")
            else:
                if size - off < 10:
                    break
                start, n = off + 10, int.from_bytes(buf[off + 2 : off + 10], "big")
            if size < start + n:
                break
            op = buf[off] & 0x0F
            if op == 0x8:
                self.close_code = int.from_bytes(buf[start : start + 2], "big") if n >= 2 else None
            elif self.decode:
                self._dispatch(orjson.loads(bytes(buf[start : start + n])))
            frames += 1
            off = start + n
        if off:
            del buf[:off]
        self.frames += frames

    def _dispatch(self, frame: dict) -> None:
        if "re" in frame or frame.get("t") == "welcome":
            self.replies.put_nowait(frame)
        elif frame.get("t") == "msg" and self.on_msg is not None:
            self.on_msg(frame)

    def send(self, frame: dict) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(orjson.dumps(frame)))

    async def request(self, frame: dict, wait: float = 30) -> dict:
        self.send(frame)
        async with asyncio.timeout(wait):
            while True:
                reply = await self.replies.get()
                if reply.get("re") == frame.get("id"):
                    return reply

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def connect(host: str, port: int, token: str, on_msg: Callable[[dict], None] | None = None
                  ) -> RawClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: RawClient(host, port, on_msg), host, port)
    await proto.opened
    welcome = await proto.request({"t": "hello", "id": "h", "token": token})
    if welcome.get("t") != "welcome":
        raise ConnectionError(f"no welcome: {welcome}")
    return proto


def now_us() -> int:
    return time.monotonic_ns() // 1000
