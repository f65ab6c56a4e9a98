"""The reflex mind: the offline default, no model. Deterministic for a given seed.

It answers from the reading of the message and the person's memory, in the card's voice:
it reacts to how the message feels (VADER), to what it just learned, recalls what it knew
(likes, dislikes, habits, relatives), answers memory commands and the honest head count,
and asks about what it does not know yet — one question at a time, never the same twice.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import re
from collections.abc import AsyncIterator, Callable, Sequence

from personas.memory import Fact
from personas.minds import reflex_lines as L
from personas.minds.base import Mind, MindInput
from personas.understand import Intent

CHUNK_WORDS = {"quick": 6, "measured": 4, "slow": 3}
# Compiled once: every reply runs them, and re's own cache costs a lookup per call.
_TOKEN = re.compile(r"\s*\S+\s*")
_NO_NAME = re.compile(r",?\s*\{name\}(?=[.!?,])|\{name\},?\s*")
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"[^.!?]+[.!]")
_I = re.compile(r"I\b")
_NEGATIVE_FEELINGS = frozenset({"sad", "tired", "exhausted", "lonely", "anxious", "nervous", "stressed",
                                "bored", "angry", "upset", "awful", "terrible", "depressed", "sick",
                                "ill", "worried", "overwhelmed", "frustrated", "scared", "down", "low"})


class ReflexMind(Mind):
    name = "reflex"

    def __init__(self, seed: int = 0, chunk_delay: float = 0.0) -> None:
        self.seed = seed
        self.chunk_delay = chunk_delay  # seconds between chunks: 0 in tests, a little for people

    async def reply(self, inp: MindInput) -> AsyncIterator[str]:
        text = compose(inp, self.seed)
        for chunk in split_chunks(text, CHUNK_WORDS[inp.card.voice.pacing]):
            if self.chunk_delay > 0:
                await asyncio.sleep(self.chunk_delay)
            yield chunk


def split_chunks(text: str, words: int) -> list[str]:
    """Chunks of ``words`` words whose concatenation is exactly ``text``."""
    tokens = _TOKEN.findall(text)
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)] or [text]


class _Writer:
    """Picks lines for one reply: seeded, in the card's voice, avoiding what was just said."""

    def __init__(self, inp: MindInput, seed: int) -> None:
        msg = inp.message
        digest = hashlib.blake2b(f"{seed}|{inp.card.id}|{msg.person}|{msg.seq}|{msg.text}".encode(),
                                 digest_size=8).digest()
        self.rng = random.Random(int.from_bytes(digest, "big"))
        self.inp, self.card, self.memory = inp, inp.card, inp.memory
        self.name = inp.memory.known_name
        # The slot asked last turn; a new one is set only if this reply asks one.
        self.previous_asked, inp.memory.asked = inp.memory.asked, ""
        self.recent = " ".join(t.text for t in inp.turns[-6:] if t.who == "persona")

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, *banks: Sequence[str], **values: str) -> str:
        """A line from the first non-empty bank, preferring one not said recently."""
        lines = next((b for b in banks if b), ())
        if not lines:
            return ""
        fresh = [x for x in lines if x.split("{")[0][:24] not in self.recent] or list(lines)
        return self.fill(self.rng.choice(fresh), **values)

    def fill(self, line: str, **values: str) -> str:
        values.setdefault("name", self.name)
        if not values["name"]:
            line = _NO_NAME.sub("", line)
        for key, value in values.items():
            line = line.replace("{" + key + "}", value)
        return line[:1].upper() + line[1:]

    def fact_line(self, bank: Sequence[str], fact: Fact) -> str:
        return self.pick(bank, v=fact.value, s=fact.subject, say=fact.say())


# -- intents with a fixed job ---------------------------------------------------------------

def _recall(w: _Writer, inp: MindInput) -> list[str]:
    slot, memory = inp.reading.target, inp.memory
    if slot:
        facts = memory.likes() if slot == "like" else [f for f in [memory.get(slot)] if f]
        if not facts:
            return [w.pick(L.RECALL_MISSING, ask=_ask(w, slot))]
        return [w.pick(("Of course: {list}.", "I remember: {list}."), list=_and([f.say() for f in facts]))]
    if not memory.facts:
        return [w.pick(L.RECALL_NONE, ask=_ask(w, _next_slot(w) or "like"))]
    lines = [w.pick(L.RECALL_HEAD)]
    lines += [f"\n- {f.say()} (message #{f.seq})" for f in memory.facts]
    if memory.mood.word:
        lines.append(f"\n- lately you've said you feel {memory.mood.word}")
    return ["".join(lines)]


def _forget(w: _Writer, inp: MindInput) -> list[str]:
    if inp.forgotten:
        return [w.pick(L.FORGOT, list=_and([f.say() for f in inp.forgotten]))]
    return [w.pick(L.FORGOT_NONE, topic=inp.reading.target.strip() or "that")]


def _forget_all(w: _Writer, inp: MindInput) -> list[str]:
    if not inp.forgotten:
        return [w.pick(L.FORGOT_ALL_EMPTY)]
    return [w.pick(L.FORGOT_ALL, n=str(len(inp.forgotten)))]


def _count(w: _Writer, inp: MindInput) -> list[str]:
    n = max(1, inp.conversations)
    return [w.pick(L.COUNT_ONE if n == 1 else L.COUNT_MANY, n=f"{n:,}")]


def _who(w: _Writer, inp: MindInput) -> list[str]:
    about = w.card.tagline or w.card.description.split(". ")[0]
    return [w.pick(L.WHO, persona=w.card.name, tagline=about).strip()]


def _greet(w: _Writer, inp: MindInput) -> list[str]:
    if inp.memory.turns > 1:
        hello = w.pick(L.GREET_AGAIN)
    else:
        hello = w.fill(w.rng.choice((w.card.greeting, *w.card.greetings)).replace("{user}", "{name}"))
    if inp.learned:  # "Hi, I'm Ana and I love jazz": the facts matter more than the hello
        return [hello, _content(w, inp, idle=False)]
    if inp.memory.turns <= 1 and not inp.memory.get("name"):
        return [hello, _ask(w, "name")]
    return [hello, _callback(w, inp) or _question(w, inp)]


def _farewell(w: _Writer, inp: MindInput) -> list[str]:
    return [w.pick(L.FAREWELL)]


def _thanks(w: _Writer, inp: MindInput) -> list[str]:
    return [w.pick(L.THANKS), _question(w, inp)]


# -- ordinary conversation ------------------------------------------------------------------

def _chat(w: _Writer, inp: MindInput) -> list[str]:
    low = _feels_low(inp)
    reaction = _reaction(w, inp, low)
    parts = [reaction, _content(w, inp, idle=not reaction)]
    if not low and w.card.voice.phrases and w.chance(0.15 + 0.35 * w.inp.trait("playfulness")):
        parts.append(w.pick(w.card.voice.phrases))
    if not any("?" in p for p in parts):
        parts.append(w.pick(L.MOOD_ASK_LOW) if low else _question(w, inp))
    return _with_name(w, [p for p in parts if p])


def _feels_low(inp: MindInput) -> bool:
    if inp.reading.feeling:
        return inp.reading.feeling in _NEGATIVE_FEELINGS
    # "I hate mornings" scores negative but is a preference to note, not a pain to soothe.
    return inp.reading.sentiment <= -0.35 and not inp.learned


def _reaction(w: _Writer, inp: MindInput, low: bool) -> str:
    score = inp.reading.sentiment
    if low:
        return w.pick(w.card.voice.empathy, L.EMPATHY)
    if score >= 0.55:
        return w.pick(w.card.voice.delight, L.DELIGHT)
    if inp.memory.mood.score > 0.2 and w.inp.turns and _was_low(w):
        return w.pick(L.MOOD_UP)
    return w.pick(w.card.voice.openers) if w.chance(0.5) else ""


def _was_low(w: _Writer) -> bool:
    return any(x in w.recent for x in (*L.EMPATHY, *w.card.voice.empathy))


def _content(w: _Writer, inp: MindInput, idle: bool) -> str:
    if inp.learned:
        first = next((f for f in inp.learned if f.kind == "name"), inp.learned[0])
        return w.fact_line(L.LEARNED.get(first.kind, ("{say}. Noted.",)), first)
    return (_callback(w, inp) or _card_topic(w, inp) or _answer_question(w, inp)
            or _topic(w, inp) or (w.pick(L.IDLE) if idle else ""))


def _callback(w: _Writer, inp: MindInput) -> str:
    """Bring back something remembered that this message touches."""
    words = set(inp.reading.topics)
    for fact in reversed(inp.memory.facts):
        bank = L.CALLBACKS.get(fact.kind)
        if bank and fact.seq != inp.message.seq and words & set(_WORD.findall(fact.value.lower())):
            return w.fact_line(bank, fact)
    return ""


def _card_topic(w: _Writer, inp: MindInput) -> str:
    text = inp.message.text.lower()
    for keyword, lines in w.card.voice.topics.items():
        if _word_start(keyword).search(text):
            return w.pick(lines, topic=keyword)
    return ""


@functools.lru_cache(maxsize=1024)
def _word_start(keyword: str) -> re.Pattern[str]:
    """A card topic as the start of a word (cards are few, their keywords fixed)."""
    return re.compile(rf"\b{re.escape(keyword)}")


def _answer_question(w: _Writer, inp: MindInput) -> str:
    if inp.reading.intent is not Intent.QUESTION:
        return ""
    text = inp.message.text.lower()
    interest = next((i for i in (*w.card.interests, *w.card.expertise) if i.lower() in text), "")
    if interest:
        return w.pick(L.INTEREST, topic=interest)
    topic = inp.reading.topics[0] if inp.reading.topics else "that"
    return w.pick(L.QUESTION, topic=topic)


def _topic(w: _Writer, inp: MindInput) -> str:
    name = w.name.lower()
    topics = [t for t in inp.reading.topics if t != name]
    if not topics:
        return ""
    # "my grandmother" is talked about as "your grandmother", anything else as "the …".
    mine = re.search(rf"\b(?:my|our)\s+{re.escape(topics[0])}\b", inp.message.text, re.IGNORECASE)
    return w.pick(L.TOPIC, topic=("your " if mine else "the ") + topics[0])


def _question(w: _Writer, inp: MindInput) -> str:
    """At most one follow-up about something unknown; not right after an unanswered one."""
    if w.previous_asked and not inp.learned:
        return ""  # they let the last question go: do not interrogate
    slot = _next_slot(w)
    if not slot or not w.chance(0.3 + 0.65 * w.inp.trait("curiosity", 0.6)):
        return ""
    return _ask(w, slot)


def _ask(w: _Writer, slot: str) -> str:
    memory = w.memory
    memory.asked = slot
    if slot not in memory.asked_slots:
        memory.asked_slots.append(slot)
    return w.fill(w.card.voice.questions.get(slot) or L.QUESTIONS[slot])


def _next_slot(w: _Writer) -> str:
    m = w.memory
    known = {
        "name": m.get("name"), "mood": m.mood.word or m.turns > 6, "like": m.likes(),
        "home": m.get("home") or m.get("origin"),
        "job": m.get("job") or m.get("workplace") or m.get("identity") or m.get("study"),
        "favourite": m.all("favourite"), "habit": m.habits(),
    }
    return next((s for s in L.QUESTIONS if not known[s] and s not in m.asked_slots), "")


def _with_name(w: _Writer, parts: list[str]) -> list[str]:
    """Now and then, say their name in the first sentence — warmer cards more often."""
    if not parts or not w.name or w.name in " ".join(parts):
        return parts
    if not w.chance(0.15 + 0.3 * w.inp.trait("warmth")):
        return parts
    first = parts[0]
    if _SENTENCE.fullmatch(first):
        parts[0] = f"{first[:-1]}, {w.name}{first[-1]}"
    return parts


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_HANDLERS: dict[Intent, Callable[[_Writer, MindInput], list[str]]] = {
    Intent.RECALL: _recall, Intent.FORGET: _forget, Intent.FORGET_ALL: _forget_all,
    Intent.COUNT: _count, Intent.WHO_ARE_YOU: _who, Intent.GREET: _greet,
    Intent.FAREWELL: _farewell, Intent.THANKS: _thanks,
}


def compose(inp: MindInput, seed: int = 0) -> str:
    """The whole reply for ``inp``: the same input and seed always give the same text."""
    w = _Writer(inp, seed)
    parts = [p for p in _HANDLERS.get(inp.reading.intent, _chat)(w, inp) if p]
    for i in range(1, len(parts)):
        if parts[i - 1].endswith("—") and not _I.match(parts[i]):
            parts[i] = parts[i][:1].lower() + parts[i][1:]  # "Okay, wait — so you…"
    return " ".join(parts).strip() or w.pick(L.IDLE)
