"""How a long-running OS1 process sets up Python before its event loop starts."""

from __future__ import annotations

import gc


def prepare() -> None:
    """uvloop when installed, and a garbage collector that does not stall the loop.

    With thousands of connections a process holds ~1M objects (~100 per connection, most of
    them aiohttp's); CPython's default thresholds run a full collection every few seconds
    under load, each walking all of them (0.35-0.7 s with the loop stopped: the p99 of a
    busy persona; docs/performance.md). Collecting the young generation less often and the
    old one rarely keeps the pauses short; cycles still go, just later.
    """
    gc.set_threshold(10_000, 10, 100)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        pass
