"""Which worker of a persona answers which conversation. Pure: no store, no clock.

Every worker of a persona receives every message of the persona's dm rooms (its inbox), so
the workers must agree who answers each one. They agree without talking to each other:
each keeps a lease in the memory store (a heartbeat with a TTL, see ``MemoryStore.roster``)
and reads back the roster of live workers; a conversation belongs to the live worker with
the highest rendezvous hash of (worker, room). When a worker leaves or its lease lapses,
only its own conversations move — each to the survivor that ranks next for it — and the
others stay where they were.

Two workers may briefly disagree while their rosters differ (at most one heartbeat). Both
then answer the same message with the same reply cid (see ``personas.worker.reply_cid``), and
the hub's idempotency posts it once: a moment of wasted thought, never a reply twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

COLLECTIVE = "collective:"  # the key whose owner speaks for the persona in the collective


def _rank(worker: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{worker}\n{key}".encode(), digest_size=8).digest(), "big")


def owner(key: str, workers: Iterable[str]) -> str | None:
    """The worker that holds ``key`` among ``workers`` (None when there are none)."""
    return max(workers, key=lambda w: (_rank(w, key), w), default=None)


@dataclass(frozen=True)
class Roster:
    """One worker's view of its persona's live workers, with each one's conversation count."""

    me: str
    loads: Mapping[str, int] = field(default_factory=dict)  # live worker -> conversations now

    @property
    def workers(self) -> tuple[str, ...]:
        return tuple(sorted(self.loads))

    def owns(self, key: str) -> bool:
        if len(self.loads) <= 1:
            return self.me in self.loads  # alone (the usual case): no hashing
        return owner(key, self.loads) == self.me

    def others_load(self) -> int:
        """Conversations the other live workers hold: part of the persona's honest head count."""
        return sum(n for w, n in self.loads.items() if w != self.me)

    def gained(self, before: Roster, keys: Iterable[str]) -> list[str]:
        """The keys this worker holds now and did not under ``before``."""
        return [k for k in keys if self.owns(k) and not before.owns(k)]
