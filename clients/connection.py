"""The resilient connection under the OS1 SDK (protocol v1), built on ``websockets``.

One supervisor task per client owns the socket: it reads every frame, resolves the
pending request a reply (``re``) answers, and puts everything else on a bounded event
queue. When the queue is full the reader waits, so a slow consumer shows up at the hub as
a slow reader instead of as memory growth here. Replies wait behind it too: a client must
consume its events (every member connection gets its own msgs back), or its requests time
out once ``max_events`` are queued. On a resumable loss it reconnects with
jittered backoff, says hello, rejoins rooms with ``since`` and re-sends the requests that
are safe to repeat (``send`` keeps its ``cid``, which the hub dedupes). Given the URLs of
several nodes of one hub (``urls``: nodes sharing Redis), each reconnection attempt goes to
the next one in turn, so a client leaves a dead or draining node at its first retry.
The token may be a function (sync or async) instead of a string: it is called for every
connection, so a long-lived client (a persona worker) presents a fresh short-lived token
each time it reconnects instead of one minted to last a year.

The typed request helpers live in :mod:`clients.sdk`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from clients.errors import (
    ConnectionClosedError,
    ConnectionLostError,
    OS1Error,
    RequestError,
    RequestTimeoutError,
)
from clients.handshake import open_session
from clients.resume import ResumeState
from clients.wire import (
    RETRYABLE,
    CloseCode,
    Codec,
    DecodeError,
    Format,
    Frame,
    backoff_delays,
    is_reconnectable,
)

__all__ = ["Connection", "TokenSource"]

TokenSource = str | Callable[[], str | Awaitable[str]]

log = logging.getLogger("os1.client")

MAX_PENDING = 10_000
# Rejoin refusals after which a room is no longer resumed. Any other (unavailable: a busy
# or unreachable store; rate_limited; internal) fails the whole resume, retried later.
GONE = frozenset({"not_found", "forbidden"})
DEFAULT_MAX_FRAME = 65_536
_END: Frame = {"t": "__end__"}  # queue sentinel, compared by identity


@dataclass(eq=False)
class _Pending:
    frame: Frame
    data: str | bytes
    future: asyncio.Future[Frame]
    hook: Callable[[Frame], None] | None
    retryable: bool
    gen: int = -1  # generation of the connection it was last sent on; -1: never sent


class Connection:
    """A connection to the hub that survives restarts; ``Client`` adds typed requests."""

    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        fmt: Format = "json",
        reconnect: bool = True,
        backoff: tuple[float, float] = (0.05, 5.0),
        request_timeout: float = 10.0,
        max_events: int = 10_000,
        use_header_auth: bool = False,
        urls: Sequence[str] = (),
    ) -> None:
        """``urls``: other nodes of the same hub, tried in turn after ``url``."""
        if max_events < 1 or request_timeout <= 0:  # Queue(0) would be unbounded
            raise ValueError("max_events must be >= 1 and request_timeout > 0")
        self.url, self._token = url, token  # url: the node connected to (or tried) last
        self._urls = list(dict.fromkeys([url, *urls]))
        self._codec = Codec(fmt)
        self._reconnect, self._backoff = reconnect, backoff
        self._timeout, self._header_auth = request_timeout, use_header_auth
        self._events: asyncio.Queue[Frame] = asyncio.Queue(maxsize=max_events)
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._state = ResumeState()
        self._ws: ClientConnection | None = None
        self._gen = 0
        self._ready = False  # connected, welcomed and resumed: requests go straight out
        self._runner: asyncio.Task[None] | None = None
        self._final: ConnectionClosedError | None = None
        self._closing = False
        self.reconnects = 0
        self._failed_resumes = 0  # in a row: each one starts the next backoff further on
        self.welcome: Frame | None = None
        self._store_reset = False
        self.me: Frame | None = None

    # -- public state ---------------------------------------------------------------
    @property
    def last_seq(self) -> dict[str, int]:
        """Highest msg seq delivered per room (full room id, as the hub names it)."""
        return self._state.last_seq

    @property
    def closed(self) -> ConnectionClosedError | None:
        """Why the client ended for good, or None while it is alive."""
        return self._final

    def room_name(self, room: str) -> str:
        """The full id the hub answered a join of ``room`` with (``dm:x`` -> ``dm:x:me``)."""
        return self._state.full_name(room)

    # -- lifecycle ------------------------------------------------------------------
    async def connect(self) -> Frame:
        """Connect to the first node of ``url``, ``*urls`` that answers."""
        if self._runner is not None:
            raise OS1Error("connect() was already called")
        failures: list[str] = []
        for url in self._urls:
            try:
                ws, welcome = await self._open(url)
            except (OSError, WebSocketException, TimeoutError) as exc:
                failures.append(f"{url}: {exc}")
                continue
            self._ready = True
            self._runner = asyncio.create_task(self._run(ws), name="os1-client")
            return welcome
        raise ConnectionClosedError(None, "cannot connect to " + "; ".join(failures))

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._runner is not None:
            await _reap(self._runner)
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self._finish(ConnectionClosedError(CloseCode.NORMAL, "closed by client"))

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- requests -------------------------------------------------------------------
    async def request(self, frame: Frame) -> Frame:
        """Send ``frame`` with a fresh id and return the reply; an error reply raises."""
        return await self._call(frame, None)

    # -- events ---------------------------------------------------------------------
    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Frame:
        try:
            return await self.next_event()
        except ConnectionClosedError:
            raise StopAsyncIteration from None

    async def next_event(self, timeout: float | None = None) -> Frame:  # noqa: ASYNC109
        """The next event; raises TimeoutError, or ConnectionClosedError once ended and
        drained. Synthetic events: ``reconnecting`` and ``reconnected``."""
        events = self._events
        if self._final is not None and events.empty():
            raise self._final
        if not events.empty():
            item = events.get_nowait()  # the usual case under load: no coroutine to wait in
        elif timeout is None:
            item = await events.get()
        else:
            item = await asyncio.wait_for(events.get(), timeout)
        if item is _END:
            self._events.put_nowait(_END)  # wake any other consumer too
            raise self._final or ConnectionClosedError(None, "ended")
        return item

    # -- internals: requests ----------------------------------------------------------
    def _submit(
        self, frame: Frame, hook: Callable[[Frame], None] | None, *, internal: bool = False
    ) -> _Pending:
        if self._final is not None:
            raise self._final
        if self._runner is None:
            raise OS1Error("not connected: call connect() first")
        if len(self._pending) >= MAX_PENDING and not internal:  # the resume must not fail
            raise OS1Error(f"too many pending requests ({MAX_PENDING})")
        rid = next(self._ids)
        frame = {**frame, "id": rid}
        data = self._encode(frame)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        pending = _Pending(frame, data, future, hook, frame["t"] in RETRYABLE)
        self._pending[rid] = pending
        return pending

    async def _call(self, frame: Frame, hook: Callable[[Frame], None] | None) -> Frame:
        pending = self._submit(frame, hook)
        try:
            if self._ready:
                await self._transmit(pending)
            # A timer that fails the future rather than asyncio.wait_for, which wraps every
            # request in a waiter future and callbacks: a persona sends one per reply.
            future = pending.future
            timer = future.get_loop().call_later(self._timeout, _time_out, future)
            try:
                return await future
            finally:
                timer.cancel()
        except TimeoutError:
            raise RequestTimeoutError(
                f"no reply to {frame['t']!r} within {self._timeout}s"
            ) from None
        finally:
            self._pending.pop(pending.frame["id"], None)

    def _pacer(self) -> Callable[[int], Awaitable[None]]:
        """Spread a resume burst (a persona may rejoin thousands of rooms) over the hub's
        announced rate (welcome.server.rate), so the hub never refuses it as a flood."""
        rate = ((self.welcome or {}).get("server") or {}).get("rate") or {}
        per_s, burst = rate.get("per_s"), rate.get("burst")
        if not isinstance(per_s, int | float) or not isinstance(burst, int) or per_s <= 0:
            return _no_pause
        chunk = max(1, burst // 2)  # half the bucket: room left for the live traffic

        async def pace(i: int) -> None:
            if (i + 1) % chunk == 0:
                await asyncio.sleep(chunk / per_s)

        return pace

    async def _transmit(self, pending: _Pending) -> None:
        ws = self._ws
        if ws is None or pending.gen == self._gen:
            return
        pending.gen = self._gen
        try:
            await ws.send(pending.data)
        except ConnectionClosed:
            pass  # the reader sees the loss; the resume re-sends what is safe

    async def _fire(self, frame: Frame) -> None:
        """Requests without a reply: dropped while reconnecting (they are ephemeral)."""
        if self._final is not None:
            raise self._final
        data = self._encode(frame)
        if self._ready and self._ws is not None:
            try:
                await self._ws.send(data)
            except ConnectionClosed:
                pass

    def _encode(self, frame: Frame) -> str | bytes:
        data = self._codec.encode(frame)
        server = (self.welcome or {}).get("server") or {}
        limit = server.get("max_frame", DEFAULT_MAX_FRAME)
        # len * 4 bounds the UTF-8 size: most frames are sized without encoding them again.
        if isinstance(limit, int) and len(data) * 4 > limit and Codec.size(data) > limit:
            # The hub would close 1009 and a retry would loop: refuse it here.
            raise OS1Error(f"frame of {Codec.size(data)} bytes exceeds max_frame {limit}")
        return data

    # -- internals: connection --------------------------------------------------------
    async def _open(self, url: str) -> tuple[ClientConnection, Frame]:
        self.url = url
        ws, welcome = await open_session(
            url, await self._fresh_token(), self._codec, self._header_auth, self._timeout
        )
        self._ws, self._gen = ws, self._gen + 1
        self.welcome = welcome
        # A new store epoch: the hub restarted empty; its seqs start over (reported as reset).
        self._store_reset = self._state.on_epoch((welcome.get("server") or {}).get("epoch"))
        me = welcome.get("me")
        self.me = me if isinstance(me, dict) else None
        return ws, welcome

    async def _fresh_token(self) -> str:
        if isinstance(self._token, str):
            return self._token
        try:
            token = self._token()
            if not isinstance(token, str):
                token = await token
        except Exception as exc:  # e.g. an auth service that is down: retried like the hub
            raise ConnectionError(f"the token source failed: {exc!r}") from exc
        if not isinstance(token, str) or not token:
            raise OS1Error(f"the token source returned {type(token).__name__}, not a token string")
        return token

    async def _run(self, ws: ClientConnection) -> None:
        """Supervisor: serve a connection, then reconnect while that is allowed."""
        attempt = 0
        try:
            while True:
                code, reason = await self._serve(ws, attempt)
                self._ready, self._ws = False, None
                if self._closing:
                    return
                if not (self._reconnect and is_reconnectable(code)):
                    raise ConnectionClosedError(code, reason)
                self._fail_unsafe(code, reason)
                ws, attempt = await self._reopen(code, reason)
        except ConnectionClosedError as exc:
            self._finish(exc)
        except Exception as exc:  # a bug must not leave waiters hanging until timeout
            log.exception("client supervisor failed")
            self._finish(ConnectionClosedError(None, f"client failure: {exc!r}"))

    async def _serve(self, ws: ClientConnection, attempt: int) -> tuple[int | None, str]:
        reader = asyncio.create_task(self._read(ws), name="os1-client-reader")
        resume: asyncio.Task[None] | None = None
        try:
            if attempt:
                resume = asyncio.create_task(self._resume(ws, attempt))
                await asyncio.wait({reader, resume}, return_when=asyncio.FIRST_COMPLETED)
                if resume.done() and resume.exception() is not None:
                    await ws.close(CloseCode.GOING_AWAY, "resume failed")  # _reap logs it
            return await reader
        finally:
            for task in (resume, reader):
                if task is not None:
                    await _reap(task)

    async def _read(self, ws: ClientConnection) -> tuple[int | None, str]:
        try:
            async for data in ws:
                event = self._route(data)
                if event is None:
                    continue
                if self._events.full():
                    await self._events.put(event)  # blocks when full: backpressure
                else:
                    self._events.put_nowait(event)  # the same, without a coroutine per frame
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""

    def _route(self, data: str | bytes) -> Frame | None:
        """Resolve the waiter a reply answers; return what to deliver as an event."""
        try:
            frame = Codec.decode(data)
        except DecodeError as exc:
            log.warning("dropping frame from hub: %s", exc)
            return None
        rid = frame.get("re")
        if rid is None:
            if frame["t"] == "msg" and not self._state.accept_msg(frame):
                return None  # already delivered before a reconnect
            return frame
        pending = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if pending is None or pending.future.done():
            return None  # late reply to a request that timed out or was re-sent
        if frame["t"] == "error":
            pending.future.set_exception(RequestError(frame))
        else:
            if pending.hook is not None:
                pending.hook(frame)  # before the frames that follow it (join replays)
            pending.future.set_result(frame)
        return None

    async def _reopen(self, code: int | None, reason: str) -> tuple[ClientConnection, int]:
        delays = backoff_delays(*self._backoff)
        for _ in range(min(self._failed_resumes, 16)):
            next(delays)
        # Each attempt on the next node: the one just lost may be dead or draining (1001).
        start = self._urls.index(self.url) if self.url in self._urls else 0
        for attempt in itertools.count(1):
            await self._events.put(
                {"t": "reconnecting", "attempt": attempt, "code": code, "reason": reason}
            )
            await asyncio.sleep(next(delays))
            try:
                ws, _ = await self._open(self._urls[(start + attempt) % len(self._urls)])
                return ws, attempt
            except RequestError as exc:  # credentials refused: retrying cannot help
                fatal = CloseCode.FORBIDDEN if exc.code == "forbidden" else CloseCode.UNAUTHORIZED
                raise ConnectionClosedError(fatal, exc.message) from exc
            except (OSError, WebSocketException, TimeoutError) as exc:
                code, reason = None, str(exc)
                log.info("reconnect attempt %d failed: %s", attempt, exc)
        raise AssertionError("unreachable")

    async def _resume(self, ws: ClientConnection, attempt: int) -> None:
        batch = [
            (f, self._submit(f, self._state.resume_hook(f), internal=True))
            for f in self._state.resume_frames()
        ]
        rooms: dict[str, Any] = {}
        try:
            pace = self._pacer()
            for i, (_, pending) in enumerate(batch):
                await self._transmit(pending)
                await pace(i)
            for frame, pending in batch:
                rooms[frame["room"]] = await self._resumed(frame, pending)
        except (TimeoutError, RequestError) as exc:
            self._failed_resumes += 1
            why = exc.code if isinstance(exc, RequestError) else "timed out"
            await ws.close(CloseCode.GOING_AWAY, f"resume failed: {why}")
            return
        finally:
            for _, pending in batch:
                self._pending.pop(pending.frame["id"], None)
        self._ready, self._failed_resumes = True, 0
        for pending in list(self._pending.values()):
            if pending.future.done() or pending.gen == self._gen:
                continue
            await self._transmit(pending)
        self.reconnects += 1
        await self._events.put({"t": "reconnected", "attempt": attempt, "rooms": rooms})

    async def _resumed(self, frame: Frame, pending: _Pending) -> dict[str, Any]:
        try:
            reply = await asyncio.wait_for(pending.future, self._timeout)
        except RequestError as exc:
            if exc.code not in GONE:
                raise
            self._state.forget(frame["room"])  # the group is gone, or closed to us
            return {"error": exc.code}
        info: dict[str, Any] = {k: reply[k] for k in ("seq", "replayed", "gap") if k in reply}
        since, latest = frame.get("since"), reply.get("seq")
        if self._store_reset or (isinstance(since, int) and isinstance(latest, int) and latest < since):
            info["reset"] = True  # the hub lost its log; see ResumeState.on_joined
        return info

    def _fail_unsafe(self, code: int | None, reason: str) -> None:
        """Requests already sent that must not be repeated fail; the rest wait for resume."""
        for rid, pending in list(self._pending.items()):
            if pending.gen >= 0 and not pending.retryable:
                del self._pending[rid]
                if not pending.future.done():
                    pending.future.set_exception(ConnectionLostError(code, reason))

    def _finish(self, exc: ConnectionClosedError) -> None:
        if self._final is not None:
            return
        self._final, self._ready = exc, False
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)
        self._pending.clear()
        if not self._events.full():
            self._events.put_nowait(_END)


async def _reap(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it, without swallowing our own cancellation."""
    if not task.done():
        task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.error("client task failed", exc_info=task.exception())


async def _no_pause(_: int) -> None:
    return None


def _time_out(future: asyncio.Future[Frame]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
