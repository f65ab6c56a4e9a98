"""Minds write a persona's replies: `reflex` (offline, no model) today; `openai` and `local` next."""

from __future__ import annotations

import structlog

from personas.card import Card
from personas.minds.base import Mind
from personas.minds.reflex import ReflexMind

log = structlog.get_logger("os1.persona")


def make_mind(card: Card, *, seed: int = 0, chunk_delay: float = 0.0) -> Mind:
    """The mind a card asks for. Backends not built yet fall back to reflex, loudly."""
    if card.mind.backend != "reflex":
        log.warning("mind_unavailable", persona=card.id, backend=card.mind.backend, using="reflex")
    return ReflexMind(seed=seed, chunk_delay=chunk_delay)
