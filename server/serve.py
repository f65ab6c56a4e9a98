"""Run one hub node until SIGTERM/SIGINT, then drain: stop accepting, close clients with
1001, flush, exit — all within the drain timeout."""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import structlog
from aiohttp import web

from server import auth
from server.app import HUB, create_app
from server.config import Settings
from server.rooms import ID_RE

if TYPE_CHECKING:
    from personas.card import Backend, Card
    from personas.memory import MemoryStore

log = structlog.get_logger("os1.serve")

LINK_TTL = 30 * 86400


def _local_user() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "you"
    clean = "".join(ch for ch in name if ch.isalnum() or ch in "_.-")[:64]
    return clean if clean and ID_RE.fullmatch(clean) else "you"


def links(settings: Settings, base: str) -> dict[str, str]:
    """Ready-to-use links for a person and an observer (like Jupyter's token URL)."""
    me = _local_user()
    human = auth.mint(settings.secret, sub=me, role="human", name=me.capitalize(), ttl=LINK_TTL)
    observer = auth.mint(settings.secret, sub="dashboard", role="observer", name="Dashboard",
                         ttl=LINK_TTL)
    return {"chat": f"{base}/?token={human}", "dashboard": f"{base}/dashboard?token={observer}"}


def load_personas(settings: Settings) -> list[Card]:
    """The cards `os1 serve` runs itself (OS1_PERSONAS), each with the mind OS1_MIND names
    (`card`: its own); CardError names a bad file."""
    from personas.catalog import builtin_cards, load_dir

    if settings.personas == "none":
        return []
    cards = builtin_cards() if settings.personas == "builtin" else load_dir(settings.personas)
    if settings.mind == "card":
        return cards
    backend = cast("Backend", settings.mind)
    return [replace(c, mind=replace(c.mind, backend=backend)) for c in cards]


def describe(card: Card) -> dict[str, Any]:
    """What GET /api/personas shows of a card."""
    return {"id": card.id, "name": card.name, "tagline": card.tagline, "greeting": card.greeting,
            "interests": list(card.interests), "expertise": list(card.expertise),
            "mind": card.mind.backend,
            "traits": {n: {"start": t.start, "min": t.min, "max": t.max} for n, t in card.traits.items()}}


def make_store(settings: Settings, cards: Sequence[Card]) -> MemoryStore | None:
    """The one memory store of this node, shared by its embedded personas and /api/me/:
    Redis when configured (it survives restarts and every worker of a persona shares it),
    else in memory if personas run here, else none (nothing here would ever fill it)."""
    if settings.redis_url:
        from personas.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    if cards:
        from personas.memory import InMemoryStore

        return InMemoryStore()
    return None


async def run(settings: Settings, cards: Sequence[Card] = (), *,
              on_ready: Callable[[str], None] | None = None) -> None:
    store = make_store(settings, cards)
    app = create_app(settings, catalog=[describe(c) for c in cards], memory=store)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.drain_timeout,
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening", url=base, node=settings.node, engine=app[HUB].engine.name)
    personas = None
    try:
        if cards:
            from personas.runtime import start_embedded

            # Loopback, exactly as an outside agent connects (0.0.0.0 is not an address to dial).
            dial = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            from personas.collective import CollectiveConfig

            collective = CollectiveConfig() if settings.collective == "on" else None
            personas = await start_embedded(f"ws://{dial}:{port}/ws", settings.secret, cards,
                                            store=store, collective=collective,
                                            meter=app[HUB].metrics.collective,
                                            lease=settings.persona_lease, beat=settings.persona_lease / 5)
            log.info("personas_online", personas=[c.id for c in cards])
        if on_ready is not None:
            on_ready(base)
        await stop.wait()
    finally:
        log.info("draining")
        if personas is not None:
            await personas.stop()  # before the drain, so they do not reconnect into it
        await runner.cleanup()
        log.info("stopped")


def secret_source(settings: Settings) -> str:
    if os.environ.get("OS1_SECRET"):
        return "secret from OS1_SECRET"
    return f"secret kept in {settings.data_dir} (set OS1_SECRET to use your own)"


def print_banner(settings: Settings, base: str) -> None:
    urls = links(settings, base)
    print(
        f"\nOS1 hub on {base}  (websocket: {base.replace('http', 'ws', 1)}/ws)\n"
        f"  chat:      {urls['chat']}\n"
        f"  dashboard: {urls['dashboard']}\n"
        f"  {secret_source(settings)}\n",
        file=sys.stdout, flush=True,
    )
