"""Guard notes: a guard event made visible on the wire. Pure — the clock is passed in.

The guards act inside a persona's process; an observer (the dashboard) only sees frames.
So when a guard stops a thread (``max_turns``, ``max_duration``, ``echo``) or holds a turn
for the collective ``budget``, the persona whose turn was refused posts one short ``msg``
into that thread's room with ``meta.kind == "guard"`` (fields in :func:`meta`).

A note is not a turn: it does not pass the guards, is not counted in a thread, and personas
never answer it (they only close the thread it names). It must not become a flood of its
own, so :class:`Notes` lets through at most one note per (thread, guard) and one budget
note per budget window per runtime. ``max_duration`` is noted when a turn comes after the
bound (the runtime's sweep may have closed the thread first); a thread that merely fell
quiet is no event. Cooldown and rate refusals get no note: they pace one persona for
seconds and fire often; the metrics count them (:mod:`.meter`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from personas.collective.guards import GuardConfig, Thread, Verdict

NOTED = ("max_turns", "max_duration", "echo", "budget")
KEPT = 2048  # (thread, guard) pairs remembered: far more than threads alive at once


class Notes:
    """Which guard events of one runtime get a note (shared by its personas, like the guards)."""

    def __init__(self, budget_window: float) -> None:
        self.budget_window = budget_window
        self._noted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._budget_at: float | None = None

    def claim(self, thread: str, guard: str, now: float) -> bool:
        """True once for this event: the caller posts the note."""
        if guard not in NOTED or (thread, guard) in self._noted:
            return False
        if guard == "budget":
            if self._budget_at is not None and now - self._budget_at < self.budget_window:
                return False
            self._budget_at = now
        self._remember(thread, guard)
        return True

    def noted(self, thread: str, guard: str) -> bool:
        return (thread, guard) in self._noted

    def seen(self, thread: str, guard: str, now: float) -> None:
        """A note arrived from the hub (ours, or another runtime's): none more for it here."""
        self._remember(thread, guard)
        if guard == "budget":
            self._budget_at = now

    def _remember(self, thread: str, guard: str) -> None:
        self._noted[(thread, guard)] = None
        while len(self._noted) > KEPT:
            self._noted.popitem(last=False)


def meta(verdict: Verdict, thread: Thread, config: GuardConfig) -> dict[str, Any]:
    """The note's ``meta``: what fired, in which thread, with the numbers a view shows."""
    out: dict[str, Any] = {"kind": "guard", "guard": verdict.guard, "thread": thread.id,
                           "turns": thread.turns, "max_turns": config.max_turns}
    if verdict.guard == "max_duration":
        out["max_duration"] = config.max_duration
    if verdict.guard == "budget":
        # Chatter is held at its share of the budget, while more urgent turns used the rest.
        out.update(used=min(verdict.used, verdict.limit), limit=verdict.limit, window=config.budget_window,
                   chatter=verdict.limit < config.budget_turns)
    return out


def text(verdict: Verdict, config: GuardConfig) -> str:
    """The note's words, for whoever reads the room."""
    guard = verdict.guard
    if guard == "echo":
        return "Stopping this thread here: the last turns were repeating each other."
    if guard == "max_turns":
        return f"This thread has had its {config.max_turns} turns; stopping here."
    if guard == "max_duration":
        return f"This thread has run for {config.max_duration:g} s; stopping here."
    if verdict.limit < config.budget_turns:
        return (f"Small talk has used its {verdict.limit} of the collective's {config.budget_turns} "
                f"turns per {config.budget_window:g} s; holding back for now.")
    return (f"The collective has used its {verdict.limit} turns per {config.budget_window:g} s; "
            "holding back for now.")


def cid(thread: str, guard: str) -> str:
    """The same for every worker of a persona: the hub posts a note retried elsewhere once."""
    return "g-" + hashlib.blake2b(f"{thread}\n{guard}".encode(), digest_size=12).hexdigest()
