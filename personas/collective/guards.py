"""Guards on the collective: may one more turn be said? Pure — the clock is passed in.

Every collective message a persona posts is first admitted here. Guards, in the order they
are checked:

- thread guards — ``max_turns``, ``max_duration``, ``echo`` — close the thread when they fire:
  nobody of this runtime speaks in it again (``closed`` from then on);
- speaker guards — ``cooldown``, ``rate`` — hold one persona's turn back;
- ``budget`` — the collective turns per window of all personas of this runtime together;
  chatter (greetings, welcomes, reflections) may use only ``chatter_share`` of it, so the
  turns of a consultation — someone is waiting for its answer — are not crowded out.

Speaker and budget refusals say when a retry could pass (``retry_after``). Turns are
reserved at admission (not when the hub echoes them back), so personas deciding at the
same moment cannot overshoot a bound together. A turn is counted once however many of the
runtime's personas see it: observations are deduplicated by (room, seq), and the echo of a
reserved turn by its cid.

The echo detector compares a candidate with the thread's recent texts, each reduced to its
content words (no stop words, no pleasantries, no names): a near-duplicate (Jaccard at or
above ``echo_similarity``), or a second content-free turn in a row ("Thank you, Atlas!" —
"Thank you, Nova!"), ends the thread.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from personas.collective.topics import stem

THREAD_GUARDS = ("max_turns", "max_duration", "echo")
SPEAKER_GUARDS = ("cooldown", "rate", "budget")
GUARDS = ("closed", *THREAD_GUARDS, *SPEAKER_GUARDS)
SEEN_LIMIT = 8192  # (room, seq) keys remembered for dedupe: far more than a window of turns

_WORD = re.compile(r"[a-z][a-z']+")
_FILLER = frozenset("""
the and but for with that this these those then than there their they them you your yours
our ours we us me my mine i'm i've it's its was were are is be been being have has had do does
did not no yes so very really too also just what which who how why when where all any some one
of to in on at by from as an or if up out about into over again still much many more most
thank thanks thanking thankful grateful appreciate appreciated appreciation kind kindly welcome
welcomed glad happy pleased lovely wonderful great nice good fine well means mean lot lots
truly indeed always please sure okay ok oh ah mm hello hi hey dear friend friends everyone all
back here now today again too see seeing nice meet talk talking speak hear hearing
""".split())


@dataclass(frozen=True)
class GuardConfig:
    max_turns: int = 6  # messages in one thread, the opener's included
    max_duration: float = 45.0  # seconds from a thread's first turn
    cooldown: float = 2.0  # seconds between two turns of one persona
    rate_turns: int = 6  # turns of one persona ...
    rate_window: float = 60.0  # ... per this many seconds
    budget_turns: int = 20  # turns of all the runtime's personas ...
    budget_window: float = 60.0  # ... per this many seconds
    chatter_share: float = 0.5  # of the budget, what turns nobody waits for may use
    echo_similarity: float = 0.7  # Jaccard of content words that counts as a repeat
    echo_window: int = 6  # recent turns of a thread a candidate is compared with
    max_threads: int = 256  # thread states kept; the oldest are forgotten first


@dataclass(frozen=True)
class Verdict:
    ok: bool
    guard: str = ""  # the guard that fired; "" when admitted
    retry_after: float = 0.0  # speaker guards: seconds until the turn could pass
    turn: int = 0  # admitted: this turn's number in its thread
    used: int = 0  # budget: turns counted in the window ...
    limit: int = 0  # ... of this many (the chatter share for chatter)

    @property
    def closes(self) -> bool:
        return self.guard in THREAD_GUARDS


@dataclass
class Thread:
    id: str
    room: str
    opened: float
    turns: int = 0
    texts: deque[frozenset[str]] = field(default_factory=deque)
    closed: str = ""  # why it closed; "" while open
    reserved: set[tuple[str, str]] = field(default_factory=set)  # (persona, cid) admitted here


class Guards:
    def __init__(self, config: GuardConfig | None = None, names: Iterable[str] = ()) -> None:
        self.config = config or GuardConfig()
        # Persona names and ids are not content: "Thanks, Atlas!" and "Thanks, Nova!" are alike.
        self.names = frozenset(stem(w) for n in names for w in _WORD.findall(n.lower()))
        self.threads: OrderedDict[str, Thread] = OrderedDict()
        self.counts: Counter[str] = Counter()  # refusals by guard, all personas
        self.by_persona: dict[str, Counter[str]] = {}
        self.admitted = 0
        self._last: dict[str, float] = {}  # persona -> time of its last turn
        self._recent: dict[str, deque[float]] = {}  # persona -> its turn times in the window
        self._budget: deque[float] = deque()
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    # -- threads ------------------------------------------------------------------------
    def thread(self, thread_id: str, room: str, now: float) -> Thread:
        """The thread's state, created on first sight."""
        found = self.threads.get(thread_id)
        if found is None:
            found = Thread(thread_id, room, now, texts=deque(maxlen=self.config.echo_window))
            self.threads[thread_id] = found
            while len(self.threads) > self.config.max_threads:
                self.threads.popitem(last=False)
        return found

    def is_open(self, thread_id: str) -> bool:
        found = self.threads.get(thread_id)
        return found is not None and not found.closed

    def close(self, thread_id: str, reason: str) -> None:
        found = self.threads.get(thread_id)
        if found is not None and not found.closed:
            found.closed = reason

    def sweep(self, now: float) -> list[Thread]:
        """Close the threads past their duration (nobody spoke to trip the guard); return them."""
        expired = [t for t in self.threads.values()
                   if not t.closed and now - t.opened >= self.config.max_duration]
        for t in expired:
            t.closed = "max_duration"
        return expired

    # -- deciding -----------------------------------------------------------------------
    def admit(self, persona: str, thread_id: str, room: str, text: str, cid: str, now: float, *,
              chatter: bool = False, last: bool = False, dry: bool = False) -> Verdict:
        """May ``persona`` say ``text`` in the thread now? If so the turn is counted.

        ``chatter``: a turn nobody waits for (held back earlier by the budget); ``last``: a
        closing turn, after which the thread is closed; ``dry``: only ask — nothing is
        counted, reserved or closed."""
        thread = self.threads.get(thread_id)
        if thread is None:  # a dry look must not create it (nor evict an old one for it)
            thread = Thread(thread_id, room, now) if dry else self.thread(thread_id, room, now)
        words = self.content(text)
        verdict = self._thread_verdict(thread, words, now) or self._speaker_verdict(persona, now, chatter)
        if dry:
            return verdict or Verdict(True, turn=thread.turns + 1)
        if verdict is not None:
            self.refused(persona, verdict.guard)
            if verdict.closes:
                thread.closed = verdict.guard
            return verdict
        thread.turns += 1
        thread.texts.append(words)
        thread.reserved.add((persona, cid))
        self._last[persona] = now
        self._recent.setdefault(persona, deque()).append(now)
        self._budget.append(now)
        self.admitted += 1
        if last:
            thread.closed = "done"
        return Verdict(True, turn=thread.turns)

    def refused(self, persona: str, guard: str) -> None:
        """Count a refusal (also one decided outside, by a budget shared between runtimes)."""
        self.counts[guard] += 1
        self.by_persona.setdefault(persona, Counter())[guard] += 1

    def budget_limit(self, chatter: bool) -> int:
        c = self.config
        return max(1, int(c.budget_turns * c.chatter_share)) if chatter else c.budget_turns

    def _thread_verdict(self, thread: Thread, words: frozenset[str], now: float) -> Verdict | None:
        c = self.config
        if thread.closed:
            return Verdict(False, "closed")
        if thread.turns >= c.max_turns:
            return Verdict(False, "max_turns")
        if now - thread.opened >= c.max_duration:
            return Verdict(False, "max_duration")
        if self._echoes(words, thread.texts):
            return Verdict(False, "echo")
        return None

    def _speaker_verdict(self, persona: str, now: float, chatter: bool) -> Verdict | None:
        c = self.config
        last = self._last.get(persona)
        if last is not None and now - last < c.cooldown:
            return Verdict(False, "cooldown", retry_after=last + c.cooldown - now)
        recent = _trim(self._recent.get(persona), now - c.rate_window)
        if recent is not None and len(recent) >= c.rate_turns:
            return Verdict(False, "rate", retry_after=recent[0] + c.rate_window - now)
        _trim(self._budget, now - c.budget_window)
        budget = self.budget_limit(chatter)
        if len(self._budget) >= budget:
            # The oldest turn leaving the window frees one place: enough for either kind.
            over = len(self._budget) - budget
            return Verdict(False, "budget", retry_after=self._budget[over] + c.budget_window - now,
                           used=len(self._budget), limit=budget)
        return None

    def _echoes(self, words: frozenset[str], texts: deque[frozenset[str]]) -> bool:
        if not texts:
            return False
        if not words and not texts[-1]:
            return True  # two turns in a row that say nothing: a pleasantry loop
        return bool(words) and any(
            len(words & other) / len(words | other) >= self.config.echo_similarity
            for other in texts if other)

    def content(self, text: str) -> frozenset[str]:
        """The words of ``text`` that carry meaning: no filler, no pleasantry, no names."""
        words = (stem(w.split("'")[0]) for w in _WORD.findall(text.lower()))  # "that's" -> "that"
        return frozenset(w for w in words if len(w) > 2 and w not in _FILLER and w not in self.names)

    # -- observing ----------------------------------------------------------------------
    def observe(self, thread_id: str, room: str, seq: int, sender: str, cid: str, text: str,
                now: float) -> Thread:
        """A message of the thread came from the hub: count it, once."""
        thread = self.thread(thread_id, room, now)
        key = (room, seq)
        if key in self._seen:
            return thread
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        if (sender, cid) in thread.reserved:
            thread.reserved.discard((sender, cid))  # counted when it was admitted
            return thread
        thread.turns += 1
        thread.texts.append(self.content(text))
        return thread

    # -- reporting ----------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        open_threads = sum(1 for t in self.threads.values() if not t.closed)
        closed = Counter(t.closed for t in self.threads.values() if t.closed)
        return {"admitted": self.admitted, "refused": dict(self.counts),
                "threads_open": open_threads, "threads_closed": dict(closed)}


def _trim(times: deque[float] | None, horizon: float) -> deque[float] | None:
    while times and times[0] <= horizon:
        times.popleft()
    return times
