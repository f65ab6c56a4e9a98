"""Stopping a background task for sure, within a bound."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop(task: asyncio.Task[Any], *, within: float) -> bool:
    """Cancel `task` and wait for it to end; False if it still runs after `within` s.

    Cancels again while waiting: a cancellation can be swallowed by a library (in Python
    3.11, asyncio.wait_for loses it when its inner future finishes at the same moment, and
    redis-py writes through wait_for), and a loop that survives it would run forever.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(left, 0.05))
    if not task.cancelled():
        task.exception()  # retrieved: a crash was logged by the task itself
    return True
