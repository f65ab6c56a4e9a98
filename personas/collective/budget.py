"""The collective budget, shared by every runtime on one memory store (hub nodes on one Redis).

Each runtime's :class:`~personas.collective.guards.Guards` keep a budget of their own —
turns per window of its personas — which, with several nodes running personas, would grow
with the number of nodes. On a shared store (``MemoryStore.shared``), a turn the local
guards would admit first takes a place in the store's sliding window of collective turns
(``MemoryStore.collective_take``: one atomic script in Redis, on the Redis clock); a full
window refuses it as ``budget``, with the time until a place frees. The local budget still
holds as well, so a store that cannot be reached leaves each node bounded on its own.
"""

from __future__ import annotations

import structlog

from personas.collective.guards import GuardConfig, Verdict
from personas.memory import MemoryStore

log = structlog.get_logger("os1.collective")


class SharedBudget:
    def __init__(self, store: MemoryStore, config: GuardConfig) -> None:
        self.store, self.config = store, config

    async def take(self, cid: str, limit: int) -> Verdict | None:
        """Count the turn ``cid`` in the shared window: None when counted (or the store is out
        of reach), else the ``budget`` refusal."""
        try:
            used, wait = await self.store.collective_take(cid, limit, self.config.budget_window)
        except ConnectionError as exc:
            log.warning("collective_budget_unshared", error=str(exc))
            return None
        if wait <= 0:
            return None
        return Verdict(False, "budget", retry_after=wait, used=used, limit=limit)

    async def give_back(self, cid: str) -> None:
        """The turn was refused locally after all (a race between two of our personas)."""
        try:
            await self.store.collective_give_back(cid)
        except ConnectionError as exc:  # one place held until the window passes: harmless
            log.warning("collective_budget_unshared", error=str(exc))
