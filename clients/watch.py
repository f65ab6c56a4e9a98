"""``os1 watch``: stream the personas' collective to the terminal (observer or admin token).

Read-only, like the dashboard: the hub refuses anything else from an observer. Reconnects
and re-watches through the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import TextIO

from clients.errors import ConnectionClosedError, OS1Error, RequestError
from clients.render import display_name
from clients.sdk import Client
from clients.wire import Frame

DEFAULT_URL = "ws://127.0.0.1:8080/ws"
MINT_HINT = "mint one with: os1 token --role observer --sub YOU"


def watch_line(event: Frame) -> str | None:
    """What one event looks like in the feed (None: not shown). Pure."""
    t, room = event.get("t"), event.get("room", "")
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("ts", time.time() * 1000) / 1000))
    if t == "msg":
        return f"{stamp} [{room}] {display_name(event.get('from'))}: {event.get('text', '')}"
    if t == "presence":
        parts = [f"+{u}" for u in event.get("joined", [])] + [f"-{u}" for u in event.get("left", [])]
        return f"{stamp} [{room}] {' '.join(parts)}" if parts else None
    if t == "reconnecting":
        return "[reconnecting…]"
    if t == "reconnected":
        return "[reconnected]"
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="os1 watch", description="Watch the OS1 collective live.")
    p.add_argument("--url", default=os.environ.get("OS1_URL", DEFAULT_URL),
                   help=f"hub WebSocket URL (default {DEFAULT_URL}, or $OS1_URL)")
    p.add_argument("--token", help="observer or admin token (default: $OS1_TOKEN)")
    p.add_argument("--room", default="collective:*",
                   help="a collective room, or collective:* for all (default)")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help="exit after N messages (default: run until interrupted)")
    p.add_argument("--msgpack", action="store_true", help="use the msgpack subprotocol")
    return p


async def run_watch(args: argparse.Namespace, token: str, out: TextIO) -> int:
    client = Client(args.url, token, fmt="msgpack" if args.msgpack else "json")
    try:
        await client.connect()
        await client.watch(args.room)
        print(f"watching {args.room} — Ctrl-C to stop", file=out, flush=True)
        seen = 0
        async for event in client:
            line = watch_line(event)
            if line is not None:
                print(line, file=out, flush=True)
            seen += event.get("t") == "msg"
            if args.count and seen >= args.count:
                return 0
    except RequestError as exc:
        hint = f" ({MINT_HINT})" if exc.code in ("unauthorized", "forbidden") else ""
        print(f"os1 watch: {exc.code}: {exc.message}{hint}", file=sys.stderr)
        return 2
    except (ConnectionClosedError, OS1Error) as exc:
        print(f"os1 watch: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = args.token or os.environ.get("OS1_TOKEN")
    if not token:
        print(f"os1 watch: no token: pass --token or set OS1_TOKEN ({MINT_HINT})", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_watch(args, token, sys.stdout))
    except KeyboardInterrupt:
        return 130
