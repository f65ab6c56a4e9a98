"""One conversation's bookkeeping inside a worker: what waits to be answered, in order. Pure.

The worker's reader calls :meth:`Conversation.offer` for every message of the room and a
per-conversation task takes from :meth:`Conversation.next`; no I/O here, so the ordering,
dedupe, overflow and catch-up rules are tested without a socket.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

from personas.minds.base import Turn

RECENT_TURNS = 8  # what a mind sees of the conversation: enough for context, bounded
OPEN = -1  # gate value: not catching up
MINE = 256  # own message seqs remembered per group room


@dataclass(order=True, slots=True)
class Pending:
    """A message from the person, waiting for an answer (several when merged on overflow)."""

    seq: int
    mid: str = field(compare=False)
    text: str = field(compare=False)
    name: str = field(compare=False, default="")
    ts: int = field(compare=False, default=0)
    merged: int = field(compare=False, default=1)  # how many messages this one stands for
    person: str = field(compare=False, default="")  # who sent it (group rooms: many people)
    check: int = field(compare=False, default=0)  # group: answer only if this seq is the persona's


@dataclass(eq=False)
class Conversation:
    room: str
    person: str
    limit: int = 16  # queued messages before the newest ones are merged
    queue: list[Pending] = field(default_factory=list)  # sorted by seq
    seen: int = 0  # highest seq seen in the room, from anyone
    done: int = 0  # highest seq answered (or known answered) by this worker
    gate: int = OPEN  # while catching up: the seq the replay must reach before answering
    # While catching up: every seq up to `contig` has come in; `above` holds the ones past a hole.
    contig: int = 0
    above: set[int] = field(default_factory=set)
    turns: deque[Turn] = field(default_factory=lambda: deque(maxlen=RECENT_TURNS))
    last_active: float = 0.0
    forgets: dict[str, int] = field(default_factory=dict)  # person -> forget count at the last clear
    merges: int = 0
    mine: set[int] = field(default_factory=set)  # group: recent seqs of the persona's own messages
    known_after: int = 1 << 62  # group: every message after this seq has been seen (see `hold`)

    def offer(self, item: Pending, *, own: bool = False) -> bool:
        """Record a message of the room; True when it was queued for an answer."""
        self.seen = max(self.seen, item.seq)
        if self.gate != OPEN:
            self._advance(item.seq)
        if own or item.seq <= self.done or any(p.seq == item.seq for p in self.queue):
            return False  # ours, already answered, or a replayed duplicate
        bisect.insort(self.queue, item)
        while len(self.queue) > self.limit:
            # Bounded without losing words: the two newest become one turn, answered once —
            # only when one person said both and both are surely for us (group rooms).
            last, prev = self.queue[-1], self.queue[-2]
            if last.person != prev.person or last.check or prev.check:
                break
            del self.queue[-2:]
            self.queue.append(Pending(last.seq, last.mid, f"{prev.text}\n{last.text}", last.name,
                                      last.ts, prev.merged + last.merged, last.person))
            self.merges += 1
        return True

    def mine_add(self, seq: int) -> None:
        """One of the persona's own messages in a group: replies to it address the persona."""
        self.mine.add(seq)
        if len(self.mine) > MINE:
            self.mine.discard(min(self.mine))

    def hold(self, since: int) -> None:
        """Catching up from ``since``: answer nothing until the replay has come in.

        A live message may overtake the replay (it arrives through the inbox while the join
        is in flight), so "seen the room's latest seq" is not enough: every seq in between
        must have come in, since a dm (or joined group) room delivers all of its messages
        to the persona.
        """
        self.done = max(self.done, since)
        self.known_after = min(self.known_after, since)
        self.contig = max(self.contig, since)
        self.gate = 1 << 62  # until the join says how far the replay goes

    def release_at(self, latest: int, *, retained: int | None = None) -> None:
        """The join answered: the replay ends at ``latest``. With a gap, only the last
        ``retained`` messages exist any more, so the holes before them never fill."""
        if retained is not None:
            self.contig = max(self.contig, latest - retained)
        self.gate = latest
        self._advance(self.contig)

    def _advance(self, seq: int) -> None:
        if seq > self.contig:
            self.above.add(seq)
        while self.contig + 1 in self.above:
            self.contig += 1
            self.above.discard(self.contig)
        if self.contig >= self.gate:
            self.gate, self.above = OPEN, set()

    @property
    def ready(self) -> bool:
        return bool(self.queue) and self.gate == OPEN

    def next(self) -> Pending | None:
        if not self.ready:
            return None
        return self.queue.pop(0)

    def answered(self, seq: int) -> None:
        self.done = max(self.done, seq)

    @property
    def idle(self) -> bool:
        return not self.queue and self.gate == OPEN
