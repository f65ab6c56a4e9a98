"""Client-side pacing: stay under the hub's per-connection rate limit instead of hitting it.

The hub answers frames past its token bucket with `rate_limited` and closes a connection
that keeps going (4029). A persona holding thousands of conversations on one connection
would hit that first, so it spends its own bucket, sized from `welcome.server.rate` with a
margin: replies (`send`, `join`) wait for a token; optional frames (`typing`, `delta`) are
only sent while the bucket is comfortably full, and otherwise skipped (deltas are merged
into the next one, and the final `send` carries the whole text anyway).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

MARGIN = 0.8  # use 80% of what the hub allows: its clock and ours do not tick together


class Pacer:
    def __init__(self, rate: float, burst: float, *, reserve: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate, burst
        self.reserve = burst * reserve  # optional frames never dip below this
        self.tokens = burst
        self._clock = clock
        self._stamp = clock()

    @classmethod
    def from_welcome(cls, welcome: dict[str, Any] | None) -> Pacer:
        rate = ((welcome or {}).get("server") or {}).get("rate") or {}
        per_s, burst = rate.get("per_s"), rate.get("burst")
        if not isinstance(per_s, int | float) or not isinstance(burst, int | float) or per_s <= 0:
            return cls(math.inf, math.inf)  # the hub announced no limit
        return cls(per_s * MARGIN, max(1.0, burst * MARGIN))

    def _refill(self) -> None:
        now = self._clock()
        if math.isinf(self.rate):
            self.tokens = math.inf
        else:
            self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self) -> bool:
        """An optional frame: take a token only when well above the reserve."""
        self._refill()
        if self.tokens >= 1 + self.reserve:
            self.tokens -= 1
            return True
        return False

    async def take(self) -> None:
        """A frame that must go out: wait for a token (bounded by the refill rate).

        The token is taken at once, on credit: the bucket may go below zero and each caller
        sleeps once, until its own token has refilled — first come, first served. Polling
        instead (sleep, refill, retry) woke every waiter for every token: with thousands of
        replies waiting, that herd cost more CPU than the replies themselves.
        """
        self._refill()
        self.tokens -= 1
        if self.tokens >= 0:
            return
        try:
            await asyncio.sleep(-self.tokens / self.rate)
        except asyncio.CancelledError:
            self.tokens = min(self.burst, self.tokens + 1)  # never sent: its token goes back
            raise
