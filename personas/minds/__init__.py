"""Minds write a persona's replies: `reflex` (offline, no model), `openai` (any
OpenAI-compatible endpoint) and `local` (a bundled small LLM served in-process)."""

from __future__ import annotations

from collections.abc import Mapping

from personas.card import Card
from personas.minds.base import Mind, MindConfigError, MindError, MindUnavailable
from personas.minds.reflex import ReflexMind

__all__ = ["Mind", "MindConfigError", "MindError", "MindUnavailable", "make_mind"]


def make_mind(card: Card, *, seed: int = 0, chunk_delay: float = 0.0,
              env: Mapping[str, str] | None = None) -> Mind:
    """The mind a card asks for; MindConfigError says what is missing to build it."""
    match card.mind.backend:
        case "openai":
            from personas.minds.openai_mind import OpenAIMind

            return OpenAIMind.for_card(card, env)
        case "local":
            from personas.minds.local import LocalMind  # needs only the optional extra when used

            return LocalMind.for_card(card, env)
    return ReflexMind(seed=seed, chunk_delay=chunk_delay)
