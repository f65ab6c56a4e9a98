"""One thing a persona knows of a person, and their mood: plain data told back in words.

A :class:`Fact` carries its provenance (the seq and mid of the message that taught it) and an
id stable while it is stored, so "forget X" (in chat or through REST) removes exactly it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from personas.extract import SINGLE

# Kinds keyed by their subject (one favourite colour, one dog's name), not by value.
BY_SUBJECT = frozenset({"favourite", "relative"})


@dataclass
class Fact:
    kind: str
    value: str
    subject: str = ""
    seq: int = 0  # provenance: the message that taught it
    mid: str = ""
    ts: int = 0

    @property
    def id(self) -> str:
        """Stable while the fact is stored: what REST clients name to forget exactly this one."""
        raw = f"{self.kind}\x1f{self.subject}\x1f{self.value}\x1f{self.seq}".encode()
        return hashlib.blake2b(raw, digest_size=6).hexdigest()

    def key(self) -> tuple[str, str]:
        if self.kind in SINGLE:
            return (self.kind, "")
        if self.kind in BY_SUBJECT:
            return (self.kind, self.subject.lower())
        return (self.kind, self.value.lower())

    def say(self) -> str:
        """The fact told back in the second person: "you live in Lisbon"."""
        v, s = self.value, self.subject
        match self.kind:
            case "name":
                return f"your name is {v}"
            case "age":
                return f"you're {v}"
            case "home":
                return f"you live in {v}"
            case "origin":
                return f"you're from {v}"
            case "job":
                return f"you work as {_article(v)}"
            case "workplace":
                return f"you work at {v}"
            case "identity":
                return f"you're {_article(v)}"
            case "dislike":
                return f"you don't like {v}"
            case "favourite":
                return f"your favourite {s} is {v}"
            case "habit":
                return f"{s} you {v}" if s.startswith("every") else f"you {s} {v}"
            case "relative":
                return f"your {s} is called {v}"
            case "birthday":
                return f"your birthday is {v}"
            case "study":
                return f"you study {v}"
            case "have":
                return f"you have {v}"
            case "language":
                return f"you speak {v}"
            case "plays":
                return f"you play {v}"
        return f"you {self.kind} {v}"


def _article(value: str) -> str:
    if re.match(r"(?:an?|the|my|your)\s", value, re.IGNORECASE):
        return value
    return ("an " if value[:1].lower() in "aeiou" else "a ") + value


@dataclass
class Mood:
    score: float = 0.0  # VADER compound, smoothed over the last few messages
    word: str = ""  # the last feeling they named ("tired")
    seq: int = 0
    ts: int = 0

    @property
    def label(self) -> str:
        if self.score >= 0.35:
            return "bright"
        if self.score <= -0.35:
            return "low"
        return "even"
