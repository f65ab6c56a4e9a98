"""Who answers what in the collective. Pure: a decision per incoming message.

Collective messages carry their thread in ``meta`` (``thread``, ``kind``, ``topic``/``topics``,
``to``); a message without one (a foreign agent's, an admin's) is a thread of its own of kind
``other``. A :class:`Policy` only decides what to say; whether it may be said is the guards'
call, made afterwards, so a policy that always answers (as tests build on purpose) is still
held by them.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from personas.card import Card
from personas.collective import speech
from personas.collective.config import CollectiveConfig
from personas.collective.topics import fit

# "guard": a guard note (personas/collective/notes.py) — never a turn, never answered.
KINDS = frozenset({"greet", "welcome", "ask", "answer", "reflect", "reply", "close", "guard", "other"})
MAX_META_TEXT = 64


def _text(value: Any) -> str:
    return value[:MAX_META_TEXT] if isinstance(value, str) else ""


def _texts(value: Any, limit: int = 8) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_text(v) for v in value[:limit] if isinstance(v, str))


@dataclass(frozen=True)
class Incoming:
    """A collective ``msg`` event (or a history entry), as the collective reads it."""

    room: str
    seq: int
    sender: str
    sender_name: str
    text: str
    ts: int  # hub time, ms since the epoch
    cid: str
    thread: str
    kind: str
    topic: str = ""
    topics: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    guard: str = ""  # a guard note: the guard that fired

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> Incoming | None:
        room, seq = event.get("room"), event.get("seq")
        if not isinstance(room, str) or not room.startswith("collective:") or not isinstance(seq, int):
            return None
        raw_from, raw_meta = event.get("from"), event.get("meta")
        sender: Mapping[str, Any] = raw_from if isinstance(raw_from, dict) else {}
        meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        kind = _text(meta.get("kind"))
        ts = event.get("ts")
        return cls(room=room, seq=seq, sender=_text(sender.get("id")),
                   sender_name=str(sender.get("name") or sender.get("id") or "")[:100],
                   text=str(event.get("text", "")), ts=ts if isinstance(ts, int) else 0,
                   cid=_text(event.get("cid")), thread=_text(meta.get("thread")) or f"{room}#{seq}",
                   kind=kind if kind in KINDS else "other", topic=_text(meta.get("topic")),
                   topics=_texts(meta.get("topics")), to=_texts(meta.get("to"), 16),
                   guard=_text(meta.get("guard")))


@dataclass(frozen=True)
class Utterance:
    text: str
    kind: str
    topic: str = ""
    prompt: speech.Prompt | None = None  # set when a mind may write the answer instead


@dataclass
class View:
    """What a policy may know when it decides."""

    me: Card
    cards: Mapping[str, Card]
    config: CollectiveConfig
    rng: random.Random
    mine: str = ""  # the kind of the thread when this persona opened it, else ""
    welcomed_recently: bool = False  # this persona welcomed the sender within welcome_period


class Policy(ABC):
    @abstractmethod
    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        """What to say in answer to ``msg`` (from another persona), or None."""


class NaturalPolicy(Policy):
    """The default: welcome newcomers now and then, answer questions put to you, comment on
    a reflection that touches your interests, thank the one who answered yours. Nothing is
    said in answer to a welcome, an answer to someone else, or a thank-you: threads end."""

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        me, rng, c = view.me, view.rng, view.config
        if msg.kind == "greet":
            if view.welcomed_recently or rng.random() >= c.welcome_chance:
                return None
            return Utterance(speech.welcome(me, msg.sender_name, rng), "welcome")
        if msg.kind == "ask" and me.id in msg.to:
            return self._answer(msg, view, msg.topic or next(iter(msg.topics), ""), "answer")
        if msg.kind == "reflect" and not view.mine:
            topic = next((t for t in msg.topics if fit(me, t)), "")
            if topic and rng.random() < c.reply_chance:
                return self._answer(msg, view, topic, "reply")
        if view.mine == "reflect" and msg.kind == "reply":
            return Utterance(speech.thanks([msg.sender_name], rng), "close")
        return None

    def _answer(self, msg: Incoming, view: View, topic: str, kind: str) -> Utterance | None:
        if not topic:
            return None
        prompt = speech.Prompt(msg.kind, topic, msg.text, msg.sender_name)
        return Utterance(speech.answer(view.me, topic, view.rng, reply=kind == "reply"), kind, topic, prompt)
