"""Per-connection token bucket, plus the "kept going" rule that closes abusers. Pure.

The clock is passed in, so tests drive time by hand.
"""

from __future__ import annotations

from collections import deque


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Strikes:
    """Counts rejections in a sliding window; `add` says when the limit is reached."""

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        # Made on the first strike: most connections never get one, and an empty deque
        # costs ~600 bytes — per idle connection, that adds up.
        self._times: deque[float] | None = None

    def add(self, now: float) -> bool:
        if self._times is None:
            self._times = deque(maxlen=self.limit)  # bounded: only the last `limit` matter
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times) >= self.limit
