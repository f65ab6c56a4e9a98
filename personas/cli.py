"""`os1 personas …`: list the cards, run personas against a hub, import community cards.

    os1 personas list [--dir DIR] [--json]
    os1 personas run --url ws://HOST:PORT/ws --token TOKEN [--card ID | --card-file FILE]
    os1 personas run --url ws://HOST:PORT/ws --all [--dir DIR]      (secret: OS1_SECRET)
    os1 personas import CARD.json [--out FILE.toml]

`main(argv)` returns the exit code; the `os1` command hands it everything after `personas`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import jwt

from personas.card import Card, CardError, load_card
from personas.catalog import builtin_cards, find, load_dir
from personas.ccv2 import card_to_toml, import_ccv2
from personas.memory import InMemoryStore, MemoryStore
from personas.minds import make_mind
from personas.runtime import run_workers, start_embedded
from personas.worker import PersonaWorker
from server.logs import configure
from server.loop import prepare as prepare_loop

READY_TIMEOUT = 30.0  # seconds for the personas to come online before giving up


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="os1 personas", description="OS1 personas: cards and workers.")
    sub = p.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="list the persona cards")
    ls.add_argument("--dir", help="a folder of *.toml cards (default: the built-in ones)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    run = sub.add_parser("run", help="run personas against a hub")
    run.add_argument("--url", required=True, help="the hub's WebSocket URL, ws://host:port/ws")
    who = run.add_mutually_exclusive_group(required=True)
    who.add_argument("--token", help="a persona token (os1 token --role persona --sub ID)")
    who.add_argument("--all", action="store_true", help="every card, tokens minted with OS1_SECRET")
    run.add_argument("--card", help="card id for --token (default: the token's sub)")
    run.add_argument("--card-file", help="a card .toml file for --token")
    run.add_argument("--dir", help="a folder of *.toml cards (default: the built-in ones)")
    run.add_argument("--seed", type=int, default=0, help="reflex mind seed (default 0)")
    run.add_argument("--pace", type=float, default=0.04, help="seconds between streamed chunks")
    run.add_argument("--redis", default=os.environ.get("OS1_REDIS_URL", ""),
                     help="keep memory in this Redis, shared with the hub and other workers "
                          "(default: $OS1_REDIS_URL; without it, in this process only)")
    imp = sub.add_parser("import", help="convert a Character Card V2 JSON into an OS1 card")
    imp.add_argument("file", help="the chara_card_v2 .json file")
    imp.add_argument("--out", help="write the TOML card here (default: print it)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd == "list":
            return _list(args)
        if args.cmd == "import":
            return _import(args)
        return _run(args)
    except CardError as exc:
        print(f"os1 personas: {exc}", file=sys.stderr)
        return 2


def _cards(folder: str | None) -> list[Card]:
    return load_dir(folder) if folder else builtin_cards()


def _list(args: argparse.Namespace) -> int:
    cards = _cards(args.dir)
    rows = [{"id": c.id, "name": c.name, "mind": c.mind.backend, "tagline": c.tagline} for c in cards]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max((len(c.id) for c in cards), default=2)
    print(f"{'ID':<{width}}  {'NAME':<12} {'MIND':<7} TAGLINE")
    for r in rows:
        print(f"{r['id']:<{width}}  {r['name']:<12} {r['mind']:<7} {r['tagline']}")
    return 0


def _import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"os1 personas import: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    card, dropped = import_ccv2(raw, path.name)
    text = card_to_toml(card)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} (persona id {card.id!r})", file=sys.stderr)
    else:
        print(text, end="")
    for name in dropped:
        print(f"dropped: {name}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.all:
        from server.config import ConfigError, Settings

        try:
            secret = Settings.load().with_defaults_filled().secret
        except (ConfigError, OSError) as exc:
            print(f"os1 personas run: {exc}", file=sys.stderr)
            return 2
        prepare_loop()
        return asyncio.run(_serve(args, _cards(args.dir), secret=secret))
    card = _card_for_token(args)
    if card is None:
        return 2
    prepare_loop()
    return asyncio.run(_serve(args, [card], token=args.token))


def _card_for_token(args: argparse.Namespace) -> Card | None:
    if args.card_file:
        return load_card(args.card_file)
    wanted = args.card or _token_sub(args.token)
    card = find(_cards(args.dir), wanted or "")
    if card is None:
        print(f"os1 personas run: no card with id {wanted!r}; see `os1 personas list`", file=sys.stderr)
    return card


def _token_sub(token: str) -> str | None:
    """The token's `sub`, read without verifying: only to pick a card; the hub verifies."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None


async def _serve(args: argparse.Namespace, cards: list[Card], *, secret: str = "", token: str = "") -> int:
    configure("console")
    store = _store(args.redis)
    try:
        return await _supervise(args, cards, store, secret=secret, token=token)
    finally:
        await store.close()


def _store(redis_url: str) -> MemoryStore:
    if redis_url:
        from personas.redis_store import RedisStore

        return RedisStore(redis_url)
    return InMemoryStore()


async def _supervise(args: argparse.Namespace, cards: list[Card], store: MemoryStore, *, secret: str,
                     token: str) -> int:
    try:
        if secret:
            runtime = await start_embedded(args.url, secret, cards, seed=args.seed, chunk_delay=args.pace,
                                           ready_timeout=READY_TIMEOUT, store=store)
        else:
            mind = make_mind(cards[0], seed=args.seed, chunk_delay=args.pace)
            worker = PersonaWorker(cards[0], args.url, token, mind=mind, store=store)
            runtime = await run_workers([worker], store, READY_TIMEOUT)
    except (TimeoutError, RuntimeError) as exc:
        print(f"os1 personas run: {exc}", file=sys.stderr)
        return 1
    print(f"personas online: {', '.join(runtime.workers)} (Ctrl-C to stop)", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    # Returns when asked to stop, or when every worker gave up (e.g. tokens revoked).
    ended: asyncio.Future[Any] = asyncio.gather(*runtime.tasks, return_exceptions=True)
    await asyncio.wait([waiter, ended], return_when=asyncio.FIRST_COMPLETED)
    gave_up = not stop.is_set()
    waiter.cancel()
    await runtime.stop()
    return 1 if gave_up else 0
