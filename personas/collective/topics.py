"""Topics the collective talks about: a fixed vocabulary, and who knows what. Pure.

The vocabulary is what makes the `topics` consent level checkable: a word may leave a
conversation only if it is a known topic (this list, or a word of some persona's interests or
expertise). A name, a made-up word or a pasted secret is not in it, so it cannot get out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from personas.card import Card

# Everyday subjects people bring to a companion. Deliberately common nouns only: nothing
# here should ever be a person's name or identify anyone.
BASE_VOCABULARY = frozenset("""
art arts music songs singing guitar piano jazz opera dance dancing film films movies cinema theatre
books reading novels poetry poems writing stories painting drawing photography design fashion
science physics chemistry biology maths mathematics astronomy space stars planets universe nature
ocean oceans rivers mountains forests weather rain snow climate seasons animals birds dogs cats
gardening gardens plants flowers trees herbs cooking recipes baking bread food coffee tea wine
travel travelling trips cities languages language history philosophy stoicism ethics religion
meditation sleep dreams health exercise running walking hiking cycling swimming football tennis
chess games puzzles code coding programming software computers engineering robots technology
internet money work career jobs business school study studying exams university teaching learning
family friends friendship love loneliness relationships marriage parenting children kids grief
anxiety stress happiness habits planning decisions productivity motivation memory time change
holidays birthdays weekend mornings evenings night home housing moving neighbours community
politics news economy environment volunteering kindness gratitude patience courage hope fear
""".split())

_WORD = re.compile(r"[a-z]+")
_TOPIC_SHAPE = re.compile(r"[a-z][a-z-]{2,31}")


def stem(word: str) -> str:
    """A crude singular ("gardens" -> "garden"), enough to match a card's wording."""
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(items: Iterable[str]) -> set[str]:
    return {stem(w) for item in items for w in _WORD.findall(item.lower()) if len(w) > 2}


def vocabulary(cards: Iterable[Card]) -> frozenset[str]:
    """Stems of every word that may leave a conversation as a topic."""
    words = {stem(w) for w in BASE_VOCABULARY}
    for card in cards:
        words |= _words((*card.interests, *card.expertise))
    return frozenset(words)


def known_topic(word: str, vocab: frozenset[str]) -> bool:
    word = word.lower()
    return bool(_TOPIC_SHAPE.fullmatch(word)) and stem(word) in vocab


def fit(card: Card, topic: str) -> int:
    """2 when ``topic`` is the card's expertise, 1 when one of its interests, else 0."""
    s = stem(topic)
    if s in _words(card.expertise):
        return 2
    if s in _words(card.interests):
        return 1
    return 0


@dataclass(frozen=True)
class Pick:
    topic: str
    experts: tuple[Card, ...]


def choose(me: Card, topics: Iterable[str], cards: Mapping[str, Card], online: Iterable[str],
           limit: int) -> Pick | None:
    """The first topic outside ``me``'s expertise that an online peer knows, and those peers
    (best fit first, then by id for determinism); None when nobody can help."""
    peers = [cards[p] for p in sorted(set(online)) if p in cards and p != me.id]
    for topic in topics:
        if fit(me, topic) == 2:
            continue  # my own field: no need to ask
        ranked = sorted((c for c in peers if fit(c, topic)), key=lambda c: (-fit(c, topic), c.id))
        if ranked:
            return Pick(topic, tuple(ranked[:limit]))
    return None


def room_for(topic: str) -> str:
    """The collective room of a topic; the part after ``collective:`` is a valid hub id."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", topic.lower()).strip("-_.")[:64] or "misc"
    return f"collective:{slug}"
