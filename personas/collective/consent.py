"""What of a conversation may leave it for the collective: the single choke point. Pure.

Every collective message made from conversation material (a consultation's question, a
reflection) is built from a :class:`Shareable`, and :func:`release` is the only place that
makes one. It applies the person's consent:

- ``none``: nothing leaves — no topic, no words, no name (release returns None);
- ``topics`` (the default): only topic words found in the fixed vocabulary, never a name of
  the person, never their words verbatim;
- ``full``: the same topics, plus a quote of their words.

An unknown level is treated as ``none``: a typo in a setting must fail closed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from personas.collective.topics import known_topic, stem
from personas.memory import CONSENTS, Consent, PersonMemory

MAX_QUOTE = 280  # a quote is an illustration, not a transcript
MAX_TOPICS = 5

_NAME_PART = re.compile(r"[A-Za-z][A-Za-z'-]*")


def level_of(value: object) -> Consent:
    for level in CONSENTS:
        if value == level:
            return level
    return "none"


@dataclass(frozen=True)
class Shareable:
    """What may leave one conversation. Build it only with :func:`release`."""

    level: Consent
    topics: tuple[str, ...]
    quote: str = ""


def release(level: object, *, text: str, topics: Iterable[str], names: Iterable[str],
            vocabulary: frozenset[str]) -> Shareable | None:
    """The part of a message (``text``, its extracted ``topics``) that ``level`` lets out.

    ``names`` are everything that names the person (display name, id, the name they gave,
    relatives' names): a topic equal to any part of one is dropped even if it is a known
    word, because a person called "Rose" talking about roses must not be named by it.
    """
    consent = level_of(level)
    if consent == "none":
        return None
    banned = name_parts(names)
    kept: list[str] = []
    for topic in topics:
        word = topic.lower().strip(" '-")
        if known_topic(word, vocabulary) and stem(word) not in banned and word not in kept:
            kept.append(word)
    quote = " ".join(text.split())[:MAX_QUOTE] if consent == "full" else ""
    return Shareable(consent, tuple(kept[:MAX_TOPICS]), quote)


def merge(shares: Iterable[Shareable | None], limit: int = 3) -> Shareable | None:
    """Several released shares as one, topics only (most frequent first): a reflection speaks
    of what many conversations touched and quotes none of them."""
    counts: Counter[str] = Counter()
    for share in shares:
        if share is not None:
            counts.update(share.topics)
    if not counts:
        return None
    return Shareable("topics", tuple(t for t, _ in counts.most_common(limit)))


def name_parts(names: Iterable[str]) -> frozenset[str]:
    """Stems of every word of every name ("Quillon Vantablack" -> quillon, vantablack)."""
    return frozenset(stem(w) for n in names for w in _NAME_PART.findall(n) if len(w) > 1)


def names_of(memory: PersonMemory | None, person: str) -> tuple[str, ...]:
    """Everything that names a person in what a persona knows of them."""
    names = [person]
    if memory is not None:
        names += [memory.name, memory.known_name]
        names += [f.value for f in memory.facts if f.kind in ("name", "relative")]
    return tuple(n for n in names if n)
