"""How a persona changes with the people it talks with: trait drift and its journal. Pure.

Every message a persona answers yields :class:`Signals` (how it felt, a joke, a question).
The worker sums them for a few seconds and :func:`drift` turns the sum into small steps of
the card's traits, always clamped to the bounds the card sets. Each batch that changed
something becomes one :class:`JournalEntry`: what changed, when, and why.

Nothing here names a person or repeats their words: the journal is public to every token
holder (GET /api/personas/{id}, the dashboard), so "why" only counts kinds of messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from personas.card import Trait
from personas.understand import Intent, Reading

STEP = 0.004  # per unit of signal: ~25 warm messages move warmth by 0.1
MAX_STEP = 0.05  # per batch: a flood of messages (or one insistent person) cannot swing a trait
PRECISION = 4  # decimals kept; smaller moves are noise, not character
JOURNAL_MAX = 100  # entries kept per persona

# trait -> how each signal pushes it (weight per unit). Traits not named here do not drift.
RULES: Mapping[str, tuple[tuple[str, float], ...]] = {
    "warmth": (("positive", 1.0), ("negative", -1.0), ("thanks", 0.5)),
    "playfulness": (("jokes", 1.0), ("negative", -0.5)),
    "curiosity": (("questions", 1.0), ("learned", 0.5)),
    "confidence": (("thanks", 1.0), ("positive", 0.5), ("negative", -0.5)),
    "energy": (("exclaims", 1.0), ("negative", -0.5)),
    "patience": (("questions", 0.5), ("negative", -0.5)),
    "bluntness": (("negative", 0.5), ("positive", -0.25)),
}
_JOKE = re.compile(r"\b(?:ha(?:ha)+h?|he(?:he)+|lol|lmao|rofl|joke|joking|kidding|pun)\b|[😂🤣😆😜😄]"
                   r"|(?<!\w)[:;]-?[pPD)](?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Signals:
    """What a batch of messages said about how it went; sums with ``+``."""

    messages: int = 0
    positive: float = 0.0  # sum of the positive part of each message's sentiment (0..1 each)
    negative: float = 0.0  # sum of the negative part, as a positive number
    jokes: int = 0
    questions: int = 0
    thanks: int = 0
    exclaims: int = 0
    learned: int = 0  # facts the person taught

    def __add__(self, other: Signals) -> Signals:
        return Signals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def value(self, name: str) -> float:
        raw = getattr(self, name)
        try:
            return float(raw)
        except OverflowError:  # an int past float range
            return math.copysign(math.inf, raw)

    def why(self) -> str:
        """The reason a journal entry gives: counts only, never words or names."""
        parts = [f"{n} {label}" for label, n in (
            ("warm", _count(self.positive)), ("harsh", _count(self.negative)), ("jokes", self.jokes),
            ("questions", self.questions), ("thanks", self.thanks), ("facts learned", self.learned))
            if n > 0]
        head = f"{self.messages} message" + ("" if self.messages == 1 else "s")
        return head + (": " + ", ".join(parts) if parts else "")


def _count(amount: float) -> int:
    return round(amount) if math.isfinite(amount) else 0


def signals_of(text: str, reading: Reading, learned: int = 0) -> Signals:
    mood = reading.sentiment if math.isfinite(reading.sentiment) else 0.0
    return Signals(
        messages=1,
        positive=max(0.0, min(1.0, mood)),
        negative=max(0.0, min(1.0, -mood)),
        jokes=1 if _JOKE.search(text) else 0,
        questions=1 if "?" in text else 0,
        thanks=1 if reading.intent is Intent.THANKS else 0,
        exclaims=1 if "!" in text else 0,
        learned=learned,
    )


def current(bounds: Mapping[str, Trait], stored: Mapping[str, float]) -> dict[str, float]:
    """A card's traits as they are now: stored values, else the start, always in bounds."""
    return {name: _clamp(stored.get(name, t.start), t) for name, t in bounds.items()}


def drift(traits: Mapping[str, float], bounds: Mapping[str, Trait], signals: Signals
          ) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """New trait values after ``signals``, and what changed (trait -> (old, new)).

    Only traits the card declares are kept; each moves at most MAX_STEP per call and never
    leaves [min, max], whatever the signals (a NaN or an infinity moves nothing).
    """
    new = {name: _clamp(traits.get(name, t.start), t) for name, t in bounds.items()}
    changes: dict[str, tuple[float, float]] = {}
    for name, rules in RULES.items():
        bound = bounds.get(name)
        if bound is None:
            continue
        push = sum(weight * signals.value(signal) for signal, weight in rules)  # inf-inf: nan
        if not math.isfinite(push) or push == 0:
            continue
        old = new[name]
        value = _clamp(round(old + max(-MAX_STEP, min(MAX_STEP, STEP * push)), PRECISION), bound)
        if value != old:
            new[name] = value
            changes[name] = (old, value)
    return new, changes


def _clamp(value: float, bound: Trait) -> float:
    if not math.isfinite(value):
        return bound.start
    return min(bound.max, max(bound.min, value))


@dataclass(frozen=True)
class JournalEntry:
    ts: int  # milliseconds since the epoch, like message timestamps
    changes: Mapping[str, tuple[float, float]]  # trait -> (from, to)
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "why": self.why,
                "changes": {k: {"from": a, "to": b} for k, (a, b) in self.changes.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalEntry:
        changes = {k: (float(v["from"]), float(v["to"])) for k, v in dict(data["changes"]).items()}
        return cls(int(data["ts"]), changes, str(data["why"]))


@dataclass(frozen=True)
class Character:
    """A persona's evolving self as stored: current trait values, and a version that every
    successful evolve bumps, so workers of one persona never overwrite each other's drift."""

    traits: Mapping[str, float] = field(default_factory=dict)
    version: int = 0
