"""Counting the collective from outside: a runtime may be handed a :class:`Meter`.

``os1 serve`` passes one backed by the hub's Prometheus registry (server/metrics.py), so
/metrics shows the collective of the personas it runs. A protocol, not a class to import:
the personas stay free of server code, and any object with these two methods will do.
"""

from __future__ import annotations

from typing import Protocol


class Meter(Protocol):
    def turn(self, kind: str) -> None:
        """A collective turn of ``kind`` was said (the hub acknowledged it)."""

    def guard(self, guard: str) -> None:
        """A guard refused a turn (``closed``, a late voice in a finished thread, is not one)."""
