"""A worker's side of evolution: sums what its conversations signal, and every few seconds
turns the sum into one drift step of the persona's traits, stored with its journal entry.

Batching keeps the store out of the answering path (one write per `every` seconds, not per
message) and the journal readable (one entry per batch, not per "thanks!"). Several workers
of one persona share the traits through the store's compare-and-set: the loser reloads the
winner's traits and drifts from there, so no worker's step is lost or double-counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from personas.card import Card
from personas.evolution import Character, JournalEntry, Signals, current, drift
from personas.memory import MemoryStore

log = structlog.get_logger("os1.persona")

CAS_ATTEMPTS = 5  # other workers' steps in a row before this batch is given up


class Evolver:
    def __init__(self, card: Card, store: MemoryStore, *, every: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.card, self.store, self.every, self._clock = card, store, every, clock
        self.version = 0
        self.traits: dict[str, float] = current(card.traits, {})  # what the mind reads
        self.pending = Signals()
        self._log = log.bind(persona=card.id)

    def note(self, signals: Signals) -> None:
        self.pending += signals

    async def load(self) -> None:
        """Pick up the stored traits (at start, and to see other workers' steps)."""
        self._set(await self.store.character(self.card.id))

    def _set(self, character: Character) -> None:
        self.version = character.version
        self.traits = current(self.card.traits, character.traits)

    async def flush(self) -> JournalEntry | None:
        """Apply the pending signals as one drift step; the journal entry, if anything moved."""
        signals, self.pending = self.pending, Signals()
        if not signals.messages:
            return None
        for _ in range(CAS_ATTEMPTS):
            traits, changes = drift(self.traits, self.card.traits, signals)
            if not changes:
                return None  # at its bounds already, or nothing that moves a trait
            entry = JournalEntry(int(self._clock() * 1000), changes, signals.why())
            if await self.store.evolve(self.card.id, self.version, traits, entry):
                self.version, self.traits = self.version + 1, traits
                self._log.info("traits_drifted", why=entry.why,
                               changes={k: round(b - a, 4) for k, (a, b) in changes.items()})
                return entry
            await self.load()  # another worker stepped first: drift from its traits
        self._log.warning("drift_given_up", attempts=CAS_ATTEMPTS)
        return None

    async def run(self) -> None:
        """Until cancelled: flush what came in, or else look for other workers' steps."""
        while True:
            await asyncio.sleep(self.every)
            try:
                await (self.flush() if self.pending.messages else self.load())
            except Exception:  # the store is down, say: this batch is lost, not the worker
                self._log.exception("drift_failed")
