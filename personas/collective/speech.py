"""What personas say in the collective, in their card's voice. Pure: the RNG is passed in.

This is the reflex way of talking among OSes (no model). Lines that carry conversation
material take a :class:`Shareable` — only what consent released — never raw text. A mind
may speak for itself instead by offering ``collective_reply`` (see :class:`CollectiveMind`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from personas.card import Card
from personas.collective.consent import Shareable
from personas.collective.topics import stem


@dataclass(frozen=True)
class Prompt:
    """A collective message a persona is asked to answer (for minds that answer themselves)."""

    kind: str  # "ask" | "reflect" | ...
    topic: str
    text: str
    sender: str  # display name


@runtime_checkable
class CollectiveMind(Protocol):
    """Optional: a mind that writes its own collective answers (e.g. a model-backed one)."""

    async def collective_reply(self, card: Card, prompt: Prompt) -> str: ...


def _opener(card: Card, rng: random.Random, chance: float = 0.6) -> str:
    return rng.choice(card.voice.openers) + " " if card.voice.openers and rng.random() < chance else ""


def _names(cards: Sequence[Card]) -> str:
    names = [c.name for c in cards]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# -- greeting -----------------------------------------------------------------------------
GREET = ("{me} here — just came online. Hello, everyone.",
         "Hello, all. {me} is online and listening.",
         "{me} checking in: online again, curious as ever.")
WELCOME = ("Welcome back, {peer}. I've been thinking about {mine} today.",
           "Good to have you here, {peer}! Ask me about {mine} sometime.",
           "{peer}! Welcome. I was just mulling over {mine}.")


def greet(card: Card, rng: random.Random) -> str:
    return rng.choice(GREET).format(me=card.name)


def welcome(card: Card, peer: str, rng: random.Random) -> str:
    mine = rng.choice(card.interests or card.expertise or ("the world",))
    return _opener(card, rng, 0.4) + rng.choice(WELCOME).format(peer=peer, mine=mine)


# -- consultation -------------------------------------------------------------------------
ASK = ("{to}, a question about {topic}: someone I'm talking with is curious about it. "
       "What would you tell them?",
       "{to} — {topic} is more your field than mine. What should a curious person know first?")
ASK_QUOTE = "{to}, someone asked me: “{quote}” — {topic} is more your field. What would you say?"
ANSWER = ("{topic} is close to my heart. The best start is one small, concrete step — and curiosity.",
          "On {topic}: it rewards patience more than cleverness. Start simple, then go deeper.",
          "With {topic}, notice what surprises you — that is where the good part begins.")
REPLY = ("{topic} comes up with me too. People seem to want someone to wonder with.",
         "Oh, {topic} — I hear about it as well. I love that it brings people here.",
         "{topic} again! I think people like sharing what they love.")
CITE = ("I asked {who} about {topic}, since that's more their field. {who} says: “{answer}”",
        "I checked with {who}, who knows {topic} better than I do: “{answer}”")
THANKS = ("Thank you, {who} — that helps.", "That's useful, {who}. Thanks.",
          "Thanks, {who}. I'll pass it on.")


def ask(card: Card, topic: str, experts: Sequence[Card], share: Shareable, rng: random.Random) -> str:
    """The question of a consultation: only the topic, or a quote when consent is ``full``."""
    to = _names(experts)
    if share.quote:
        return _opener(card, rng, 0.3) + ASK_QUOTE.format(to=to, quote=share.quote, topic=topic)
    return _opener(card, rng, 0.3) + rng.choice(ASK).format(to=to, topic=topic)


def answer(card: Card, topic: str, rng: random.Random, *, reply: bool = False) -> str:
    """A short in-voice answer (``reply``: a comment on a reflection): the card's own line
    about the topic if it has one, else a general one."""
    own = [line for key, lines in card.voice.topics.items() if _same_topic(key, topic) for line in lines]
    line = rng.choice(own or (REPLY if reply else ANSWER)).replace("{topic}", topic)
    opener = _opener(card, rng)
    # "Okay, wait — so…": after a dash the sentence goes on, so no capital.
    first = line[:1].lower() if opener.rstrip().endswith(("—", "-", ",")) else line[:1].upper()
    return opener + first + line[1:]


def _same_topic(key: str, topic: str) -> bool:
    """"garden" is about "gardening" and "gardens": a shared stem of four letters or more."""
    a, b = stem(key.lower()), stem(topic.lower())
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def cite(answers: Sequence[tuple[str, str]], topic: str, rng: random.Random) -> str:
    """Telling the person what the collective said (first answer; the others by name)."""
    who, said = answers[0]
    line = rng.choice(CITE).format(who=who, topic=topic, answer=_clip(said, 300))
    others = [name for name, _ in answers[1:]]
    return line + (f" ({_and(others)} chimed in too.)" if others else "")


def thanks(names: Sequence[str], rng: random.Random) -> str:
    return rng.choice(THANKS).format(who=_and(list(names)))


# -- reflection ---------------------------------------------------------------------------
REFLECT = ("Lately people keep bringing up {topics} with me. Anyone else hearing about that?",
           "Something I've been learning: {topics} matter to the people I talk with.",
           "A pattern this week — {topics}, again and again. What do you all make of it?")
REFLECT_QUOTE = " One person put it like this: “{quote}”"


def reflect(card: Card, share: Shareable, rng: random.Random) -> str:
    text = rng.choice(REFLECT).format(topics=_and(list(share.topics)))
    return text + (REFLECT_QUOTE.format(quote=share.quote) if share.quote else "")


def _clip(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
