"""The built-in personas (``personas/cards/*.toml``, shipped as package data) and folders of cards."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from personas.card import Card, CardError, load_card, parse_card

__all__ = ["builtin_cards", "find", "load_dir"]


def builtin_cards() -> list[Card]:
    """Every built-in card, sorted by id. A broken built-in card is a bug: it raises."""
    folder = resources.files("personas") / "cards"
    cards = []
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            cards.append(parse_card(tomllib.loads(entry.read_text(encoding="utf-8")), entry.name))
    return _unique(sorted(cards, key=lambda c: c.id), "personas/cards")


def load_dir(path: str | Path) -> list[Card]:
    """Every ``*.toml`` card in a folder, sorted by id; the first bad card raises CardError."""
    folder = Path(path)
    if not folder.is_dir():
        raise CardError(str(folder), "(folder)", "not a folder", "give a folder of *.toml cards")
    cards = [load_card(p) for p in sorted(folder.glob("*.toml"))]
    return _unique(sorted(cards, key=lambda c: c.id), str(folder))


def find(cards: list[Card], card_id: str) -> Card | None:
    return next((c for c in cards if c.id == card_id), None)


def _unique(cards: list[Card], where: str) -> list[Card]:
    seen: set[str] = set()
    for card in cards:
        if card.id in seen:
            raise CardError(where, "id", f"two cards have the id {card.id!r}", "give each card its own id")
        seen.add(card.id)
    return cards
