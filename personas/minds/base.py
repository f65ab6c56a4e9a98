"""The Mind interface: given who the persona is, what it knows of the person, the recent
turns and the new message, produce the reply as an async stream of text chunks.

Every mind (reflex, openai, local) is used the same way by the worker, which turns the
chunks into `delta` frames and their concatenation into the final `send`.

Errors a mind raises::

    MindError                  root: anything a mind cannot do
     ├── MindConfigError       set up wrong (no model named, local model not installed)
     └── MindUnavailable       its endpoint failed (down, timed out, bad status)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from personas.card import Card
from personas.memory import Fact, PersonMemory
from personas.understand import Reading


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation, oldest first in `MindInput.turns`."""

    who: Literal["person", "persona"]
    text: str
    seq: int


@dataclass(frozen=True, slots=True)
class Message:
    """The message to answer."""

    text: str
    seq: int
    mid: str
    person: str  # user id
    room: str


@dataclass(frozen=True)
class MindInput:
    card: Card
    # Already updated with what `message` taught. A mind may note the slot it asked about in
    # `memory.asked` (to read a short answer next time); the worker stores memory afterwards.
    memory: PersonMemory
    turns: Sequence[Turn]  # recent turns before `message`
    message: Message
    reading: Reading
    learned: Sequence[Fact] = ()  # facts `message` added or changed
    forgotten: Sequence[Fact] = ()  # facts removed because `message` asked to
    conversations: int = 1  # how many people the persona is talking with now (honesty)
    # Trait values as they have drifted (personas/evolution.py); the card's start values
    # for any trait not given. Read them with `trait()`, never from the card.
    traits: Mapping[str, float] = field(default_factory=dict)

    def trait(self, name: str, default: float = 0.5) -> float:
        value = self.traits.get(name)
        return self.card.trait(name, default) if value is None else value


class MindError(Exception):
    """Root of what a mind raises."""


class MindConfigError(MindError):
    """The mind cannot work as configured; the message says what to set or install."""


class MindUnavailable(MindError):
    """The model endpoint failed: unreachable, too slow, or it answered with an error."""


class Mind(ABC):
    """Writes replies. Implementations must bound their own time (a mind never hangs)."""

    name: str = "mind"

    async def start(self) -> None:
        """Get ready before the first reply (e.g. start a local model server). Idempotent."""
        return None

    @property
    def stats(self) -> dict[str, int]:
        """Counters worth showing (replies, failures, retries); none by default."""
        return {}

    @abstractmethod
    def reply(self, inp: MindInput) -> AsyncIterator[str]:
        """The reply, chunk by chunk; the chunks concatenated are the whole reply."""

    async def aclose(self) -> None:
        return None
