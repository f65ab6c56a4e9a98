"""The Mind interface: given who the persona is, what it knows of the person, the recent
turns and the new message, produce the reply as an async stream of text chunks.

Every mind (reflex, openai, local) is used the same way by the worker, which turns the
chunks into `delta` frames and their concatenation into the final `send`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
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


class Mind(ABC):
    """Writes replies. Implementations must bound their own time (a mind never hangs)."""

    name: str = "mind"

    @abstractmethod
    def reply(self, inp: MindInput) -> AsyncIterator[str]:
        """The reply, chunk by chunk; the chunks concatenated are the whole reply."""

    async def aclose(self) -> None:
        return None
