"""The WebSocket edge: upgrade, hello, read loop, rate limits, closes. aiohttp only here."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from server import auth
from server.config import Settings
from server.connection import Connection, Flusher
from server.errors import BadRequest, CloseCode, HubError, RateLimited, Unauthorized
from server.hub import Hub
from server.metrics import Metrics
from server.permissions import Role
from server.protocol import requests as rq
from server.protocol.codec import SUBPROTOCOLS, decode_binary, decode_text, format_for
from server.ratelimit import Strikes, TokenBucket

log = structlog.get_logger("os1.ws")

KNOWN_TYPES = frozenset(
    {"hello", "join", "leave", "send", "delta", "history", "typing", "invite", "watch",
     "unwatch", "ping", "status", "inbox"}
)
CLOSE_TIMEOUT = 2.0


class WsTransport:
    """Owns the live sockets of one node and closes them on the hub's behalf."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.flusher = Flusher()
        self.sockets: dict[Connection, web.WebSocketResponse] = {}
        self._closing: dict[Connection, asyncio.Task[None]] = {}
        self.hub: Hub | None = None
        self._all_gone = asyncio.Event()

    # ---- closing ----------------------------------------------------------------------

    def close(self, conn: Connection, code: CloseCode, reason: str) -> None:
        """Flush what is queued, then close with `code`; abort if the peer does not answer."""
        ws = self.sockets.get(conn)
        if ws is None or conn in self._closing:
            return
        task = asyncio.ensure_future(self._close(conn, ws, code, reason))
        self._closing[conn] = task
        task.add_done_callback(lambda _: self._closing.pop(conn, None))

    async def _close(self, conn: Connection, ws: web.WebSocketResponse, code: CloseCode,
                     reason: str) -> None:
        if code is not CloseCode.TOO_SLOW:
            conn.flush()
        conn.stop()
        self.metrics.closes.labels(str(int(code))).inc()
        # This task inherited the log context of whoever asked for the close (for 4008,
        # another user's connection): log it under the closed connection's own ids.
        ident = conn.identity
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(conn=conn.id)
        if ident is not None:
            structlog.contextvars.bind_contextvars(user=ident.id, role=ident.role.value)
        log.info("closing", code=int(code), reason=reason)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await ws.close(code=int(code), message=reason.encode()[:120])
        except (TimeoutError, ConnectionError, RuntimeError):
            conn.abort()

    async def close_and_wait(self, conn: Connection, code: CloseCode, reason: str) -> None:
        """close() from the connection's own handler, which must not return before the
        queued frames and the close frame are out (else aiohttp closes with 1000 and the
        frames are dropped)."""
        self.close(conn, code, reason)
        await self.finish_close(conn)

    async def finish_close(self, conn: Connection) -> None:
        """Wait for a close already asked for (e.g. 4008 from on_overflow) to complete."""
        task = self._closing.get(conn)
        if task is not None:
            await task

    def on_overflow(self, conn: Connection) -> None:
        self.metrics.queue_drops.inc()
        self.close(conn, CloseCode.TOO_SLOW, "too slow to read: send queue full")

    async def wait_closed(self, deadline: float) -> None:
        """Wait for every socket to finish (shutdown); abort what is left after `deadline` s."""
        if self.sockets:
            self._all_gone.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline):
                    await self._all_gone.wait()
        for conn in list(self.sockets):
            conn.abort()

    # ---- serving ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        hub = self.hub
        assert hub is not None  # set by create_app
        if hub.draining:
            return web.json_response({"error": "unavailable", "message": "node is draining"},
                                     status=503)
        identity = None
        header = request.headers.get("Authorization", "")
        if header:
            try:
                identity = await hub.from_bearer(header)
            except Unauthorized as e:
                return web.json_response({"error": "unauthorized", "message": e.message},
                                         status=401)
        # max_frame + 1: aiohttp refuses a message of max_msg_size bytes already, and the
        # contract closes only frames above max_frame. Text frames stay bytes: orjson reads
        # UTF-8 itself, and invalid UTF-8 is then a bad_request, not a closed connection.
        ws = web.WebSocketResponse(
            protocols=SUBPROTOCOLS, max_msg_size=self.settings.max_frame + 1, compress=False,
            heartbeat=30.0, decode_text=False,
        )
        if not ws.can_prepare(request).ok:
            return web.json_response({"error": "bad_request", "message":
                                      "this endpoint takes a WebSocket upgrade"}, status=400)
        await ws.prepare(request)
        conn = self._connection(request, ws)
        structlog.contextvars.bind_contextvars(conn=conn.id)
        self.sockets[conn] = ws
        log.info("connected", peer=request.remote, format=conn.fmt.value)
        try:
            if await self._welcome(hub, conn, ws, identity):
                # The read loop lives here, not in a helper coroutine: each waiting
                # coroutine frame is kept per idle connection (~300 bytes, times 10,000).
                while not conn.closed:
                    req = self._request(hub, conn, await ws.receive())
                    if isinstance(req, CloseCode):
                        if req is CloseCode.RATE_LIMITED:
                            await self.close_and_wait(conn, req, "rate limited")
                        break
                    if req is not None:
                        await hub.submit(conn, req)
            await self.finish_close(conn)  # the loop stops once conn is closed, maybe mid-close
        except Exception:
            log.exception("connection_failed")
            await self.close_and_wait(conn, CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            await hub.detach(conn)
            del self.sockets[conn]
            if not self.sockets:
                self._all_gone.set()
            log.info("disconnected", code=ws.close_code, closed_by_hub=conn.closed)
            structlog.contextvars.clear_contextvars()
        return ws

    def _connection(self, request: web.Request, ws: web.WebSocketResponse) -> Connection:
        s = self.settings
        now = time.monotonic()
        assert request.transport is not None
        return Connection(
            uuid.uuid4().hex[:16],
            format_for(ws.ws_protocol),
            transport=request.transport,
            protocol=request.protocol,
            flusher=self.flusher,
            limit=s.send_queue,
            limiter=TokenBucket(s.rate_limit, s.rate_burst, now),
            on_overflow=self.on_overflow,
        )

    async def _welcome(self, hub: Hub, conn: Connection, ws: web.WebSocketResponse,
                       identity: auth.Identity | None) -> bool:
        """Authenticate (hello, unless the header did), send welcome, attach to the hub."""
        if identity is None:
            identity, rid = await self._hello(hub, conn, ws)
            if identity is None:
                return False
        else:
            rid = None  # header auth: welcome without re
        if identity.role is Role.PERSONA:  # one persona connection carries many conversations
            s = self.settings
            conn.limiter = TokenBucket(s.persona_rate_limit, s.persona_rate_burst, time.monotonic())
        hub.reply(conn, hub.welcome(conn, identity, rid))
        structlog.contextvars.bind_contextvars(user=identity.id, role=identity.role.value)
        log.info("welcome")
        await hub.attach(conn)
        return True

    async def _hello(self, hub: Hub, conn: Connection, ws: web.WebSocketResponse
                     ) -> tuple[auth.Identity | None, rq.RequestId]:
        rid: rq.RequestId = None
        try:
            # One deadline for the hello: receive(timeout=) would restart at every ping.
            async with asyncio.timeout(self.settings.hello_timeout):
                msg = await ws.receive()
            frame = self._decode(msg)
            if frame is None:
                return None, None
            rid = rq.request_id(frame)
            if frame["t"] != "hello":
                raise Unauthorized("the first frame must be hello with a token")
            req = rq.parse_request(frame, max_text=self.settings.max_text)
            token = req.token if isinstance(req, rq.Hello) else None
            identity = auth.verify(self.settings.secret, token)
            await hub.check_revoked(identity)
            return identity, rid
        except TimeoutError:
            err: HubError = Unauthorized(f"no hello within {self.settings.hello_timeout:g} s")
        except Unauthorized as e:
            err = e
        except HubError as e:
            rid = rid if e.rid is None else e.rid
            err = Unauthorized(f"bad hello: {e.message}")
        log.info("unauthorized", reason=err.message)
        hub.error(conn, err, rid)
        await self.close_and_wait(conn, CloseCode.UNAUTHORIZED, "unauthorized")
        return None, None

    def _decode(self, msg: Any) -> dict[str, Any] | None:
        """The frame of a data message; None when the socket is closing."""
        if msg.type is WSMsgType.TEXT:
            return decode_text(msg.data)
        if msg.type is WSMsgType.BINARY:
            return decode_binary(msg.data)
        return None

    def _request(self, hub: Hub, conn: Connection, msg: Any) -> rq.Request | CloseCode | None:
        """One received message as a request; None when answered with an error already;
        a close code when the connection must end (closing socket, or rate-limit strikes)."""
        s = self.settings
        rid: rq.RequestId = None
        try:
            frame = self._decode(msg)
            if frame is None:
                return CloseCode.NORMAL
            rid = rq.request_id(frame)
            t = frame["t"]
            self.metrics.frames_in.labels(t if t in KNOWN_TYPES else "unknown").inc()
            now = time.monotonic()
            if not conn.limiter.take(now):
                if conn.strikes is None:
                    conn.strikes = Strikes(s.rate_strikes, s.rate_window)
                if conn.strikes.add(now):
                    hub.error(conn, RateLimited("rate limit exceeded repeatedly"), rid)
                    return CloseCode.RATE_LIMITED
                raise RateLimited(f"slow down: at most {conn.limiter.rate:g} frames/s")
            return rq.parse_request(frame, max_text=s.max_text)
        except HubError as e:
            if isinstance(e, BadRequest):
                log.info("bad_request", reason=e.message)
            hub.error(conn, e, rid if e.rid is None else e.rid)
            return None

