"""A tiny raw-WebSocket test client for the OS1 wire protocol (no SDK in between).

Built on `websockets.asyncio.client` so the bytes on the wire are exactly what a test
sends. Every frame received from the hub is decoded by its WebSocket frame type, checked
to be in the connection's negotiated format, and validated against the protocol schema
(docs/protocol.schema.json) — so each integration test also checks the schema against real
frames. Every wait is bounded.

    alice = await clients.login("human", "alice")
    joined = await alice.request({"t": "join", "room": "group:g", "create": True})
    msg = await alice.recv_until({"t": "msg", "seq": 1})
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable
from typing import Any, Literal

import msgpack
import orjson
import pytest
from schema_util import ValidationError, validate_server_frame
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.config import Settings

Frame = dict[str, Any]
Format = Literal["json", "msgpack"]
Pred = Callable[[Frame], bool] | dict[str, Any] | str

SUBPROTOCOL = {"json": "os1.v1.json", "msgpack": "os1.v1.msgpack"}
TIMEOUT = 3.0  # the default bound of every wait


def matcher(pred: Pred) -> Callable[[Frame], bool]:
    """A predicate from a callable, a frame type (`"msg"`) or a subset map (`{"t": "msg"}`)."""
    if callable(pred):
        return pred
    if isinstance(pred, str):
        return lambda f: f.get("t") == pred
    want = dict(pred)
    return lambda f: all(k in f and f[k] == v for k, v in want.items())


def encode(frame: Any, fmt: Format) -> str | bytes:
    """A JSON text frame or a msgpack binary frame."""
    if fmt == "msgpack":
        data: bytes = msgpack.packb(frame, use_bin_type=True)
        return data
    return orjson.dumps(frame).decode()


class Wire:
    """One raw client connection. Frames read but not yet consumed wait in `backlog`."""

    def __init__(self, ws: ClientConnection, fmt: Format) -> None:
        self.ws = ws
        self.fmt = fmt
        self.frames: list[Frame] = []  # every frame received, in arrival order
        self.backlog: list[Frame] = []  # received, not yet returned by recv_until/request
        self.close_code: int | None = None
        self.close_reason = ""
        self.welcome: Frame | None = None
        self._ids = itertools.count(1000)

    @property
    def me(self) -> str:
        assert self.welcome is not None, "not welcomed"
        return str(self.welcome["me"]["id"])

    # ---- sending ------------------------------------------------------------------------

    async def send(self, frame: Any) -> None:
        """Send one frame in this connection's format."""
        await self.ws.send(encode(frame, self.fmt))

    async def send_raw(self, data: str | bytes) -> None:
        """Send exactly `data`: str as a text frame, bytes as a binary frame."""
        await self.ws.send(data)

    async def send_batch(self, frames: list[Frame]) -> None:
        """Send JSON frames in one TCP write, so the hub reads them all at once (a burst of
        pipelined requests). Client frames are masked; an all-zero mask key is valid."""
        data = bytearray()
        for frame in frames:
            payload = orjson.dumps(frame)
            n = len(payload)
            assert n < 65536
            data += bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
            data += b"\0\0\0\0" + payload
        self.ws.transport.write(bytes(data))

    async def request(self, frame: Frame, within: float = TIMEOUT) -> Frame:
        """Send `frame` (an `id` is added when missing) and return the reply with that `re`."""
        if "id" not in frame:
            frame = {**frame, "id": next(self._ids)}
        rid = frame["id"]
        await self.send(frame)
        return await self.recv_until(lambda f: f.get("re") == rid, within)

    # ---- receiving ----------------------------------------------------------------------

    async def _read(self) -> Frame:
        """The next frame off the socket, decoded and validated; ConnectionClosed at the end."""
        try:
            data = await self.ws.recv()
        except ConnectionClosed as e:
            self.close_code = e.rcvd.code if e.rcvd is not None else 1006
            self.close_reason = e.rcvd.reason if e.rcvd is not None else ""
            raise
        if self.fmt == "json":
            assert isinstance(data, str), f"a json connection got a binary frame: {data!r:.200}"
            frame = orjson.loads(data)
        else:
            assert isinstance(data, bytes), f"a msgpack connection got a text frame: {data!r:.200}"
            frame = msgpack.unpackb(data, raw=False)
        try:
            validate_server_frame(frame)
        except ValidationError as e:
            raise AssertionError(f"hub frame fails the schema: {e.message}\n{frame!r:.500}") from e
        self.frames.append(frame)
        return frame

    async def recv_until(self, pred: Pred, within: float = TIMEOUT) -> Frame:
        """The first frame (backlog first) matching `pred`; others are kept in the backlog."""
        match = matcher(pred)
        for i, f in enumerate(self.backlog):
            if match(f):
                return self.backlog.pop(i)
        try:
            async with asyncio.timeout(within):
                while True:
                    f = await self._read()
                    if match(f):
                        return f
                    self.backlog.append(f)
        except TimeoutError:
            raise AssertionError(
                f"no frame matching {pred!r} within {within} s; "
                f"unconsumed: {[_short(f) for f in self.backlog[-10:]]}"
            ) from None
        except ConnectionClosed:
            raise AssertionError(
                f"closed ({self.close_code}) before a frame matching {pred!r}; "
                f"unconsumed: {[_short(f) for f in self.backlog[-10:]]}"
            ) from None

    async def collect(self, pred: Pred, n: int, within: float = TIMEOUT) -> list[Frame]:
        """The next `n` frames matching `pred`, in arrival order, within one bound."""
        out: list[Frame] = []
        try:
            async with asyncio.timeout(within):
                while len(out) < n:
                    out.append(await self.recv_until(pred, within + 1))
        except TimeoutError:
            raise AssertionError(f"only {len(out)} of {n} frames matching {pred!r} "
                                 f"within {within} s") from None
        return out

    async def quiet(self, pred: Pred, duration: float = 0.3) -> None:
        """Assert that no frame matching `pred` arrives within `duration` s (or is waiting)."""
        match = matcher(pred)
        hits = [f for f in self.backlog if match(f)]
        assert not hits, f"unexpected frame(s): {hits}"
        try:
            async with asyncio.timeout(duration):
                while True:
                    f = await self._read()
                    assert not match(f), f"unexpected frame: {f}"
                    self.backlog.append(f)
        except TimeoutError:
            return

    async def closed(self, within: float = TIMEOUT) -> int:
        """Read until the hub closes the connection; its close code (1006: no close frame)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    self.backlog.append(await self._read())
        except ConnectionClosed:
            assert self.close_code is not None
            return self.close_code
        except TimeoutError:
            raise AssertionError(f"still open after {within} s") from None

    async def ping(self, within: float = TIMEOUT) -> None:
        """A protocol-level ping/pong round trip: proves the connection still works."""
        pong = await self.request({"t": "ping"}, within)
        assert pong["t"] == "pong", pong

    async def close(self) -> None:
        await self.ws.close()


async def send(w: Wire, room: str, text: str, **extra: Any) -> Frame:
    """A send that must be acked; the ack."""
    ack = await w.request({"t": "send", "room": room, "text": text, **extra})
    assert ack["t"] == "ack", ack
    return ack


async def join(w: Wire, room: str, **extra: Any) -> Frame:
    """A join that must succeed; the joined reply."""
    joined = await w.request({"t": "join", "room": room, **extra})
    assert joined["t"] == "joined", joined
    return joined


async def refused(w: Wire, frame: Frame, code: str = "forbidden") -> Frame:
    """A request that must be answered with an `error` of `code` (carrying its `re`)."""
    err = await w.request(frame)
    assert err["t"] == "error" and err["code"] == code, (frame, err)
    assert isinstance(err["message"], str) and err["message"], err
    return err


async def silent_ok(w: Wire, frame: Frame) -> None:
    """A request with no reply on success (typing, delta): no error comes back for it."""
    frame = {**frame, "id": f"silent-{frame['t']}"}
    await w.send(frame)
    await w.ping()  # requests are served in order: an error would have arrived first
    errors = [f for f in w.backlog if f.get("re") == frame["id"]]
    assert not errors, errors


async def eventually(cond: Callable[[], bool], within: float = TIMEOUT, what: str = "") -> None:
    """Wait (polling) until `cond()` holds; AssertionError after `within` s."""
    deadline = asyncio.get_running_loop().time() + within
    for _ in itertools.count():
        if cond():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what or cond}")
        await asyncio.sleep(0.02)


def _short(f: Frame) -> str:
    return repr({k: f[k] for k in ("t", "re", "room", "seq", "code") if k in f})


class Clients:
    """Opens connections to one hub and closes all of them at the end (async with)."""

    def __init__(self, url: str, mint: Callable[..., str]) -> None:
        self.url = url
        self.mint = mint
        self.open: list[Wire] = []

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self.open:
            try:
                async with asyncio.timeout(2):
                    await w.ws.close()
            except TimeoutError:
                w.ws.transport.abort()

    async def connect(self, fmt: Format = "json", *, subprotocols: list[str] | None = None,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> Wire:
        """Open a socket (no hello). `subprotocols=[]` offers none."""
        offer = [SUBPROTOCOL[fmt]] if subprotocols is None else subprotocols
        ws = await connect(
            self.url, subprotocols=offer or None,  # type: ignore[arg-type]
            additional_headers=headers, open_timeout=TIMEOUT, close_timeout=2,
            max_size=None, ping_interval=None, compression=None, **kwargs,
        )
        wire = Wire(ws, fmt)
        self.open.append(wire)
        return wire

    async def login(self, role: str = "human", sub: str = "alice", name: str | None = None,
                    fmt: Format = "json", **kwargs: Any) -> Wire:
        """Connect, hello with a fresh token, and check the welcome."""
        wire = await self.connect(fmt, **kwargs)
        welcome = await wire.request({"t": "hello", "id": 1, "token": self.mint(role, sub, name)})
        assert welcome["t"] == "welcome", welcome
        assert welcome["me"] == {"id": sub, "role": role, "name": name or sub}, welcome
        wire.welcome = welcome
        return wire


def small_rcvbuf_socket(host: str, port: int, size: int = 4096) -> socket.socket:
    """A connected TCP socket whose kernel receive buffer is tiny (set before connect), so a
    client that stops reading makes the hub's writes back up quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.settimeout(TIMEOUT)
    sock.connect((host, port))
    sock.setblocking(False)
    return sock


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    """Run a test against a hub with these settings. The test module overrides the
    `hub_settings` fixture with one returning `settings_for(request, tmp_path)`."""
    return pytest.mark.parametrize("hub_settings", [overrides], indirect=True,
                                   ids=[",".join(f"{k}={v}" for k, v in overrides.items())])


def settings_for(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    """hub_settings body: the conftest defaults plus any `with_settings(...)` overrides."""
    from conftest import make_settings

    return make_settings(tmp_path, **getattr(request, "param", {}))
