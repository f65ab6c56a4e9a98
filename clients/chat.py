"""``os1 chat PERSONA``: talk to a persona from the terminal (or from a pipe).

Lines from stdin are sent to ``dm:<PERSONA>``; replies print as they stream. At end of
input the chat waits until every line got its reply, or until the room has been quiet for
``--grace`` seconds, then exits. Reconnects and resumes through the SDK on a hub restart.
What gets printed for an event is decided by :class:`clients.render.ChatRenderer`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import uuid
from typing import TextIO

from clients.errors import ConnectionClosedError, OS1Error, RequestError
from clients.render import ChatRenderer
from clients.sdk import Client
from clients.wire import FATAL_CLOSE_CODES, Frame

DEFAULT_URL = "ws://127.0.0.1:8080/ws"
MINT_HINT = "mint one with: os1 token --role human --sub YOU"
QUIT_COMMANDS = frozenset({"/quit", "/exit"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="os1 chat", description="Chat with an OS1 persona.")
    parser.add_argument("persona", help="persona id, e.g. samantha")
    parser.add_argument("--url", default=os.environ.get("OS1_URL", DEFAULT_URL),
                        help=f"hub WebSocket URL (default {DEFAULT_URL}, or $OS1_URL)")
    parser.add_argument("--token", help="access token (default: $OS1_TOKEN)")
    parser.add_argument("--msgpack", action="store_true", help="use the msgpack subprotocol")
    parser.add_argument("--history", type=int, default=20, metavar="N",
                        help="recent messages to show on start (default 20)")
    parser.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                        help="at end of input, wait this long for a quiet room (default 10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = args.token or os.environ.get("OS1_TOKEN")
    if not token:
        print(f"os1 chat: no token: pass --token or set OS1_TOKEN ({MINT_HINT})", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_chat(args, token, sys.stdin, sys.stdout))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


async def run_chat(args: argparse.Namespace, token: str, stdin: TextIO, stdout: TextIO) -> int:
    client = Client(args.url, token, fmt="msgpack" if args.msgpack else "json")
    try:
        await client.connect()
    except RequestError as exc:
        print(f"os1 chat: the hub refused the token ({exc}); {MINT_HINT}", file=sys.stderr)
        return 2
    except OS1Error as exc:
        print(f"os1 chat: {exc}", file=sys.stderr)
        return 1
    try:
        renderer = ChatRenderer(
            me=str((client.me or {}).get("id", "")) or None,
            tty=stdout.isatty(),
            echo_own=not stdin.isatty(),
        )
        session = ChatSession(client, renderer, stdout, grace=args.grace)
        await session.open(f"dm:{args.persona}", args.history)
        return await session.run(stdin)
    except RequestError as exc:
        print(f"os1 chat: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()


class ChatSession:
    """The I/O loop: stdin lines out, hub events through the renderer to stdout."""

    def __init__(
        self, client: Client, renderer: ChatRenderer, out: TextIO, *, grace: float
    ) -> None:
        self.client, self.renderer, self.out, self.grace = client, renderer, out, grace
        self.room = ""
        self.sent = 0  # lines sent this session
        self.replies = 0  # live messages from others in the room
        self._activity = asyncio.Event()

    async def open(self, room: str, recent: int) -> None:
        joined = await self.client.join(room)
        self.room = str(joined.get("room", room))
        latest = joined.get("seq")
        msgs: list[Frame] = []
        if recent > 0 and isinstance(latest, int) and latest > 0:
            # Everything up to `latest` via history; later msgs arrive as events.
            msgs = await self.client.history(self.room, before=latest + 1, limit=recent)
        self.write(self.renderer.render_joined(joined, len(msgs)))
        for msg in msgs:
            self.write(self.renderer.render(msg))

    async def run(self, stdin: TextIO) -> int:
        lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)
        _start_reader(stdin, lines, asyncio.get_running_loop())
        events = asyncio.create_task(self._show_events(), name="chat-events")
        typed = asyncio.create_task(self._send_lines(lines), name="chat-input")
        try:
            await asyncio.wait({events, typed}, return_when=asyncio.FIRST_COMPLETED)
            if events.done():
                return self._closed(events)
            await typed
            await self._wait_for_replies()
            return 0
        finally:
            for task in (typed, events):
                task.cancel()
            await asyncio.gather(typed, events, return_exceptions=True)

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    async def _send_lines(self, lines: asyncio.Queue[str | None]) -> None:
        while (line := await lines.get()) is not None:
            text = line.strip()
            if text in QUIT_COMMANDS:
                return
            if not text:
                continue
            cid = uuid.uuid4().hex
            self.renderer.note_sent(cid)
            try:
                await self.client.send(self.room, text, cid=cid)
                self.sent += 1
            except RequestError as exc:
                self.write(self.renderer.render({"t": "error", **exc.frame}))
            except TimeoutError:
                self.write(self.renderer.render(
                    {"t": "error", "code": "timeout", "message": "no ack from the hub"}
                ))

    async def _show_events(self) -> None:
        async for event in self.client:
            self.write(self.renderer.render(event))
            if event.get("room") == self.room:
                self._activity.set()
                if event.get("t") == "msg" and not self.renderer.is_own(event):
                    self.replies += 1

    async def _wait_for_replies(self) -> None:
        """At end of input: until each line is answered and no reply is mid-stream,
        or the room stays quiet for `grace` seconds."""
        while self.sent and (self.replies < self.sent or self.renderer.streaming):
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), self.grace)
            except TimeoutError:
                break
        self.write(self.renderer.finish())

    def _closed(self, events: asyncio.Task[None]) -> int:
        closed = self.client.closed
        if events.exception() is not None or closed is None:
            reason = repr(events.exception()) if events.exception() else "event stream ended"
        else:
            reason = f"{closed.reason or 'closed'} (code {closed.code})"
        self.write(self.renderer.render({"t": "error", "code": "disconnected", "message": reason}))
        if isinstance(closed, ConnectionClosedError) and closed.code in FATAL_CLOSE_CODES:
            print(f"os1 chat: {MINT_HINT}", file=sys.stderr)
        return 1


def _start_reader(
    stdin: TextIO, lines: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop
) -> None:
    """Read stdin in a daemon thread (works for ttys, pipes and files alike); the bounded
    queue blocks the thread when the chat falls behind."""

    def pump() -> None:
        try:
            for line in stdin:
                asyncio.run_coroutine_threadsafe(lines.put(line.rstrip("\n")), loop).result()
        except (OSError, ValueError, RuntimeError):
            pass  # stdin closed, or the loop is gone: the chat is ending anyway
        finally:
            try:
                asyncio.run_coroutine_threadsafe(lines.put(None), loop)
            except RuntimeError:
                pass

    threading.Thread(target=pump, name="os1-chat-stdin", daemon=True).start()
