"""What a persona knows of each person, and where that is kept.

:class:`PersonMemory` is plain data with pure methods (learn, forget, feel) — every fact
carries its provenance (the seq and mid of the message that taught it), so "what do you know
about me?" can say where each thing came from and "forget X" removes exactly that.
:class:`MemoryStore` is the small backend contract: an in-memory store here, a Redis one
in personas/redis_store.py, both storing the same JSON-able dict so they behave alike. The
store also keeps what is per person across personas (consent to the collective) and per
persona across people (evolved traits and their journal, personas/evolution.py).
"""

from __future__ import annotations

import builtins
import re
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from personas.evolution import JOURNAL_MAX, Character, JournalEntry
from personas.extract import Extracted, extract_facts
from personas.facts import Fact, Mood
from personas.understand import topics as content_words

__all__ = ["CONSENTS", "DEFAULT_CONSENT", "Consent", "Fact", "InMemoryStore", "MemoryStore", "Mood",
           "PersonMemory", "StoreFull", "check_consent"]

MAX_FACTS = 200  # per person: enough for months of small talk, bounded for 8,316 people
MAX_TOPICS = 24
MAX_SUMMARY = 400
OPPOSITE = {"like": "dislike", "dislike": "like"}
# What a person's conversations may give the collective (issue 5): nothing, topics, everything.
Consent = Literal["none", "topics", "full"]
CONSENTS: tuple[Consent, ...] = ("none", "topics", "full")
DEFAULT_CONSENT: Consent = "topics"
# "forget my name", "forget where I live": phrases that name a slot rather than a value.
_SLOT_PHRASES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), kinds) for p, kinds in (
        (r"\bmy name\b|\bwhat i'?m called\b", ("name",)),
        (r"\bwhere i live\b|\bmy (?:home|address|city|town)\b", ("home",)),
        (r"\bwhere i'?m from\b|\bwhere i come from\b", ("origin",)),
        (r"\bmy (?:job|work)\b|\bwhat i do\b|\bwhere i work\b", ("job", "workplace")),
        (r"\bmy age\b|\bhow old i am\b", ("age",)),
        (r"\bmy birthday\b", ("birthday",)),
        (r"\bmy (?:likes|preferences)\b|\bwhat i like\b", ("like", "dislike", "favourite")),
        (r"\bmy habits\b", ("habit",)),
    ))


@dataclass
class PersonMemory:
    person: str
    name: str = ""  # display name the hub gave (the person's token)
    facts: list[Fact] = field(default_factory=list)
    mood: Mood = field(default_factory=Mood)
    topics: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    turns: int = 0  # messages they sent
    asked: str = ""  # memory slot of the last follow-up question, to read a short answer
    asked_slots: list[str] = field(default_factory=list)
    last_answered: int = 0  # conversation cursor: the last seq this persona answered
    forgets: int = 0  # bumped by every forgetting, so a worker drops the recent turns too
    first_ts: int = 0
    last_ts: int = 0

    # -- reading ---------------------------------------------------------------------
    def get(self, kind: str) -> Fact | None:
        return next((f for f in reversed(self.facts) if f.kind == kind), None)

    def all(self, kind: str) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def likes(self) -> list[Fact]:
        return self.all("like") + self.all("favourite")

    def dislikes(self) -> list[Fact]:
        return self.all("dislike")

    def habits(self) -> list[Fact]:
        return self.all("habit")

    @property
    def known_name(self) -> str:
        """What to call them: what they told us, else the hub's display name."""
        fact = self.get("name")
        return fact.value if fact else self.name

    # -- changing --------------------------------------------------------------------
    def learn(self, items: list[Extracted] | tuple[Extracted, ...], seq: int, mid: str, ts: int,
              max_facts: int = MAX_FACTS) -> list[Fact]:
        """Add what a message said; returns the facts that are new or changed."""
        learned: list[Fact] = []
        for item in items:
            fact = Fact(item.kind, item.value, item.subject, seq, mid, ts)
            same = [f for f in self.facts if f.key() == fact.key()]
            if same and all(f.value == fact.value for f in same):
                continue
            opposite = OPPOSITE.get(fact.kind)
            self.facts = [f for f in self.facts if f.key() != fact.key()
                          and (f.kind, f.value.lower()) != (opposite, fact.value.lower())]
            self.facts.append(fact)
            learned.append(fact)
        if len(self.facts) > max_facts:
            # The oldest go first, but never the name: it is what makes a persona personal.
            keep = sorted(self.facts, key=lambda f: (f.kind == "name", f.seq), reverse=True)[:max_facts]
            self.facts = [f for f in self.facts if f in keep]
        return learned

    def forget(self, target: str) -> list[Fact]:
        """Remove what ``target`` names ("my name", "that I like jazz", "jazz"); returns it."""
        doomed = _matching(self.facts, target)
        self.drop(doomed)
        words = set(content_words(target, limit=8))
        self.topics = {t: n for t, n in self.topics.items() if t not in words}
        if re.search(r"\bmood\b|\bhow i feel\b", target, re.IGNORECASE):
            self.mood = Mood()
        self.refresh_summary()
        return doomed

    def drop(self, facts: list[Fact]) -> None:
        """Remove exactly these facts (forget by id, from REST)."""
        if facts:
            self.facts = [f for f in self.facts if f not in facts]
            self.forgets += 1
            self.refresh_summary()

    def forget_all(self) -> list[Fact]:
        """Everything learned about them goes; the conversation cursor stays (it is not about
        them, and losing it would make the persona answer old messages again)."""
        gone = self.facts
        self.facts, self.mood, self.topics, self.summary = [], Mood(), {}, ""
        self.asked, self.asked_slots = "", []
        self.forgets += 1
        return gone

    def feel(self, score: float, word: str, seq: int, ts: int) -> None:
        # Smoothed so one sarcastic line does not flip the persona's read of someone.
        smoothed = score if self.turns <= 1 else 0.6 * score + 0.4 * self.mood.score
        self.mood = Mood(round(smoothed, 3), word or self.mood.word, seq, ts)

    def note_topics(self, words: tuple[str, ...]) -> None:
        for word in words:
            self.topics[word] = self.topics.get(word, 0) + 1
        if len(self.topics) > MAX_TOPICS:
            ranked = sorted(self.topics.items(), key=lambda kv: kv[1], reverse=True)
            self.topics = dict(ranked[:MAX_TOPICS])

    def refresh_summary(self) -> None:
        """A short rolling description, regenerated from what is known now (for model minds)."""
        parts = [f.say() for f in self.facts[-12:]]
        if self.topics:
            top = sorted(self.topics, key=lambda t: self.topics[t], reverse=True)[:5]
            parts.append("talked about " + ", ".join(top))
        if self.turns:
            parts.append(f"mood {self.mood.label}" + (f" ({self.mood.word})" if self.mood.word else ""))
        self.summary = "; ".join(parts)[:MAX_SUMMARY]

    # -- storage ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        # By hand rather than dataclasses.asdict: that deep-copies generically and was the
        # largest cost of a store put with thousands of conversations.
        data = dict(vars(self))
        data["facts"] = [dict(vars(f)) for f in self.facts]
        data["mood"] = dict(vars(self.mood))
        data["topics"] = dict(self.topics)
        data["asked_slots"] = list(self.asked_slots)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonMemory:
        data = dict(data)
        data["facts"] = [Fact(**f) for f in data.get("facts", [])]
        data["mood"] = Mood(**data.get("mood", {}))
        data["topics"] = dict(data.get("topics", {}))
        data["asked_slots"] = list(data.get("asked_slots", []))
        return cls(**data)


def _matching(facts: list[Fact], target: str) -> list[Fact]:
    kinds = {k for pattern, ks in _SLOT_PHRASES if pattern.search(target) for k in ks}
    if kinds:
        return [f for f in facts if f.kind in kinds]
    stated = {(e.kind, e.value.lower()) for e in extract_facts(target)}
    if stated:
        hits = [f for f in facts if (f.kind, f.value.lower()) in stated]
        if hits:
            return hits
    words = content_words(target, limit=8) or tuple(w.lower() for w in target.split() if len(w) > 2)
    return [f for f in facts if words and any(w in f"{f.value} {f.subject}".lower() for w in words)]


Change = Callable[[PersonMemory | None], PersonMemory | None]


class MemoryStore(ABC):
    """Per (persona, person) memory, per person consent, per persona character.

    Small on purpose: every backend passes one suite (tests/test_personas_store.py).
    Everything is bounded: people per store (least recently used out), facts per person
    (PersonMemory), journal entries per persona (JOURNAL_MAX).
    """

    @abstractmethod
    async def get(self, persona: str, person: str) -> PersonMemory | None: ...

    @abstractmethod
    async def put(self, persona: str, memory: PersonMemory) -> None: ...

    @abstractmethod
    async def update(self, persona: str, person: str, change: Change) -> PersonMemory | None:
        """Read, change and write back as one step, so a concurrent write (a forget from
        REST while the persona answers) is never overwritten with older memory. ``change``
        gets the stored memory (or None), returns what to store, or None to write nothing;
        it may run more than once (on a conflict), so it must only change its argument."""

    @abstractmethod
    async def delete(self, persona: str, person: str) -> bool: ...

    @abstractmethod
    async def list(self, persona: str) -> list[str]:
        """The people this persona has a memory of."""

    @abstractmethod
    async def consent(self, person: str) -> Consent:
        """What ``person`` lets their conversations give the collective (all personas)."""

    @abstractmethod
    async def set_consent(self, person: str, value: str) -> Consent:
        """Store a consent (see check_consent); returns it."""

    @abstractmethod
    async def character(self, persona: str) -> Character:
        """The persona's evolved traits (empty, version 0, until it first evolves)."""

    @abstractmethod
    async def evolve(self, persona: str, version: int, traits: Mapping[str, float],
                     entry: JournalEntry) -> bool:
        """Store new traits and journal ``entry`` if the stored version is still ``version``
        (compare-and-set); False when another worker evolved the persona first."""

    @abstractmethod
    async def journal(self, persona: str, limit: int = JOURNAL_MAX) -> builtins.list[JournalEntry]:
        """The last ``limit`` journal entries, newest first."""

    @abstractmethod
    async def roster(self, persona: str, worker: str, lease: float, conversations: int = 0) -> dict[str, int]:
        """Renew ``worker``'s lease among ``persona``'s workers for ``lease`` seconds (0: leave
        now), with the number of conversations it holds; return every live worker's count.
        A worker missing its renewals drops out once its lease runs out (personas.leases)."""

    async def workers(self, persona: str) -> dict[str, int]:
        """The live workers of ``persona`` (on every node) with their conversation counts."""
        return await self.roster(persona, "", 0)  # leaving as nobody: a read

    shared = False  # True when other processes (hub nodes) use the same store: Redis

    @abstractmethod
    async def collective_take(self, turn: str, limit: int, window: float) -> tuple[int, float]:
        """The collective's budget: count ``turn`` (a unique id) in the sliding window of the
        last ``window`` seconds unless ``limit`` turns are counted there already. Returns the
        turns counted before it and 0.0, or when refused, the seconds until a place frees."""

    @abstractmethod
    async def collective_give_back(self, turn: str) -> None:
        """Uncount a turn that was taken but not said."""

    async def close(self) -> None:
        return None


class StoreFull(RuntimeError):
    """The store refuses to grow past its bound rather than drop something it must keep."""


def check_consent(value: object) -> Consent:
    """``value`` as a Consent, or ValueError naming the choices."""
    if value not in CONSENTS:
        raise ValueError(f"consent must be one of {', '.join(CONSENTS)}, not {value!r}"[:200])
    return value


class InMemoryStore(MemoryStore):
    """Bounded: at most ``max_people`` (persona, person) memories, least recently used out,
    and as many consents. Personas are the cards a hub runs, so characters are not capped.

    Stores the dict form, not the object, so callers cannot change stored memory by
    mutating what `get` returned — the same semantics a networked store has. No method
    awaits anything, so each one (`update` included) is atomic on the event loop.
    """

    def __init__(self, max_people: int = 100_000, journal: int = JOURNAL_MAX) -> None:
        if max_people < 1 or journal < 1:
            raise ValueError("max_people and journal must be >= 1")
        self.max_people = max_people
        self._data: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._people: dict[str, set[str]] = {}
        # Only choices other than the default are kept: "topics" costs nothing to store.
        self._consent: OrderedDict[str, Consent] = OrderedDict()
        self._characters: dict[str, Character] = {}
        self._journals: dict[str, deque[JournalEntry]] = {}
        self._journal_max = journal
        self._leases: dict[str, dict[str, tuple[float, int]]] = {}  # persona -> worker -> (deadline, load)
        self.clock = time.monotonic
        self._collective: deque[tuple[float, str]] = deque()  # (time, turn), oldest first

    async def get(self, persona: str, person: str) -> PersonMemory | None:
        data = self._data.get((persona, person))
        if data is None:
            return None
        self._data.move_to_end((persona, person))
        return PersonMemory.from_dict(data)

    async def put(self, persona: str, memory: PersonMemory) -> None:
        key = (persona, memory.person)
        self._data[key] = memory.to_dict()
        self._data.move_to_end(key)
        self._people.setdefault(persona, set()).add(memory.person)
        while len(self._data) > self.max_people:
            (old_persona, old_person), _ = self._data.popitem(last=False)
            self._people[old_persona].discard(old_person)

    async def update(self, persona: str, person: str, change: Change) -> PersonMemory | None:
        memory = change(await self.get(persona, person))
        if memory is not None:
            if memory.person != person:
                raise ValueError(f"update of {person!r} returned the memory of {memory.person!r}")
            await self.put(persona, memory)
        return memory

    async def delete(self, persona: str, person: str) -> bool:
        self._people.get(persona, set()).discard(person)
        return self._data.pop((persona, person), None) is not None

    async def list(self, persona: str) -> list[str]:
        return sorted(self._people.get(persona, ()))

    async def consent(self, person: str) -> Consent:
        return self._consent.get(person, DEFAULT_CONSENT)

    async def set_consent(self, person: str, value: str) -> Consent:
        consent = check_consent(value)
        if consent == DEFAULT_CONSENT:
            self._consent.pop(person, None)
        elif person in self._consent or len(self._consent) < self.max_people:
            self._consent[person] = consent
        else:
            # Dropping someone else's choice would silently widen what leaves their
            # conversations (none -> topics): refuse the new one instead.
            raise StoreFull(f"consent choices are capped at {self.max_people}")
        return consent

    async def character(self, persona: str) -> Character:
        return self._characters.get(persona, Character())

    async def evolve(self, persona: str, version: int, traits: Mapping[str, float],
                     entry: JournalEntry) -> bool:
        if self._characters.get(persona, Character()).version != version:
            return False
        self._characters[persona] = Character(dict(traits), version + 1)
        self._journals.setdefault(persona, deque(maxlen=self._journal_max)).appendleft(entry)
        return True

    async def journal(self, persona: str, limit: int = JOURNAL_MAX) -> builtins.list[JournalEntry]:
        return list(self._journals.get(persona, ()))[:max(0, limit)]

    async def roster(self, persona: str, worker: str, lease: float, conversations: int = 0) -> dict[str, int]:
        now = self.clock()
        workers = self._leases.setdefault(persona, {})
        if lease > 0:
            workers[worker] = (now + lease, conversations)
        else:
            workers.pop(worker, None)
        for w in [w for w, (deadline, _) in workers.items() if deadline <= now]:
            del workers[w]
        if not workers:
            del self._leases[persona]
        return {w: load for w, (_, load) in workers.items()}

    async def collective_take(self, turn: str, limit: int, window: float) -> tuple[int, float]:
        now = self.clock()
        while self._collective and self._collective[0][0] <= now - window:
            self._collective.popleft()
        used = len(self._collective)
        if limit < 1:
            return used, window
        if used >= limit:  # the turn whose leaving frees a place for this one
            return used, self._collective[used - limit][0] + window - now
        self._collective.append((now, turn))
        return used, 0.0

    async def collective_give_back(self, turn: str) -> None:
        self._collective = deque(item for item in self._collective if item[1] != turn)

    def __len__(self) -> int:
        return len(self._data)
