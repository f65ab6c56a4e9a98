"""Running personas: one supervised worker per card, embedded in a hub or on their own.

`start_embedded` is what `os1 serve` calls once its socket listens: it mints a persona
token per card with the hub's secret and connects each worker over the loopback, exactly
as an outside agent would. `Runtime.stop()` cancels every task and waits for it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from clients.sdk import ConnectionClosedError
from clients.wire import FATAL_CLOSE_CODES, backoff_delays
from personas.card import Card
from personas.catalog import builtin_cards
from personas.collective import Backchannel, CollectiveConfig, Commons
from personas.collective.meter import Meter
from personas.memory import InMemoryStore, MemoryStore
from personas.minds import make_mind
from personas.worker import PersonaWorker, WorkerError

log = structlog.get_logger("os1.persona")

TOKEN_TTL = 3600.0  # an embedded worker's token: minted afresh for every connection


@dataclass
class Runtime:
    workers: dict[str, PersonaWorker]
    store: MemoryStore
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    commons: Commons | None = None  # the collective's shared guards; None when it is off

    def worker(self, persona: str) -> PersonaWorker:
        return self.workers[persona]

    def status(self) -> list[dict[str, Any]]:
        """id, name, online, conversations now, mind — what `GET /api/personas` will list."""
        return [{"id": w.card.id, "name": w.card.name, "online": w.ready.is_set(),
                 "conversations": w.conversations_now(), "mind": w.mind.name,
                 "workers": len(w.roster.loads),
                 "mind_stats": w.mind.stats, **w.stats,
                 **({"collective": w.collective.status()} if w.collective is not None else {})}
                for w in self.workers.values()]

    def collective_status(self) -> dict[str, Any] | None:
        """Turns admitted and held (by guard), threads open and closed (by reason)."""
        return self.commons.guards.status() if self.commons is not None else None

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks)
        # After the workers: no reply is using a mind now. Closing the last `local` mind stops
        # the in-process LLM server.
        await asyncio.gather(*(w.mind.aclose() for w in self.workers.values()), return_exceptions=True)


async def start_embedded(ws_url: str, secret: str, cards: Iterable[Card] | None = None, *,
                         store: MemoryStore | None = None, seed: int = 0, chunk_delay: float = 0.0,
                         ready_timeout: float = 10.0, collective: CollectiveConfig | None = None,
                         meter: Meter | None = None, **worker_options: Any) -> Runtime:
    """Run every card (default: the built-in ones) as a persona of the hub at ``ws_url``.
    ``collective``: how they talk among themselves; None (the default here) keeps them out.
    ``meter``: counts the collective's turns and guards (``os1 serve``: the hub's /metrics)."""
    from server.auth import mint  # the hub's own minting: embedded personas share its secret

    store = store if store is not None else InMemoryStore()
    cards = list(builtin_cards() if cards is None else cards)
    commons: Commons | None = None
    if collective is not None and collective.enabled:
        commons = Commons(collective, cards, meter=meter)
    workers = {}
    for card in cards:
        token = functools.partial(mint, secret, sub=card.id, role="persona", name=card.name, ttl=TOKEN_TTL)
        mind = make_mind(card, seed=seed, chunk_delay=chunk_delay)
        backchannel = Backchannel(card, commons, store, mind=mind) if commons is not None else None
        workers[card.id] = PersonaWorker(card, ws_url, token, store=store, mind=mind,
                                         collective=backchannel, **worker_options)
    try:
        # Before going online: a mind that cannot start (no model installed) fails start-up
        # with its own message instead of apologising to every person later.
        await asyncio.gather(*(w.mind.start() for w in workers.values()))
    except BaseException:
        await asyncio.gather(*(w.mind.aclose() for w in workers.values()), return_exceptions=True)
        raise
    runtime = await run_workers(list(workers.values()), store, ready_timeout)
    runtime.commons = commons
    return runtime


async def run_workers(workers: list[PersonaWorker], store: MemoryStore, ready_timeout: float) -> Runtime:
    """Supervise ``workers``; return once all are online, or raise (and stop them all) when
    one gives up (e.g. its token is refused) or they are not online within ``ready_timeout``."""
    runtime = Runtime({w.card.id: w for w in workers}, store)
    runtime.tasks = [asyncio.create_task(supervise(w), name=f"persona-{w.card.id}") for w in workers]
    ready: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(w.ready.wait() for w in workers)))
    watched: list[asyncio.Future[Any]] = [ready, *runtime.tasks]
    done, _ = await asyncio.wait(watched, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready in done:
        return runtime
    ready.cancel()
    await asyncio.wait([ready])
    await runtime.stop()
    gave_up = [t.get_name() for t in runtime.tasks if t in done]
    if gave_up:
        raise RuntimeError(f"{', '.join(gave_up)} could not start (see the log)")
    raise TimeoutError(f"personas not online within {ready_timeout:g} s")


async def supervise(worker: PersonaWorker, backoff: tuple[float, float] = (0.2, 10.0)) -> None:
    """Keep a worker running: restart it after a failure, give up on a refused token."""
    delays = backoff_delays(*backoff)
    bound = log.bind(persona=worker.card.id)
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await worker.run()
        except ConnectionClosedError as exc:
            if exc.code in FATAL_CLOSE_CODES:
                bound.error("persona_refused", code=exc.code, reason=exc.reason)
                return
            bound.warning("persona_disconnected", code=exc.code, reason=exc.reason)
        except WorkerError as exc:
            bound.error("persona_misconfigured", error=str(exc))
            return
        except Exception:
            bound.exception("persona_crashed")
        if loop.time() - started > 60:
            delays = backoff_delays(*backoff)  # it ran fine for a while: start small again
        await asyncio.sleep(next(delays))
