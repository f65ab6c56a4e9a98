"""Admission to Redis for the engine's calls: a bounded queue in front of the connection pool.

Why not the pool's own wait: it cannot tell "Redis is busy" from "Redis is away". A join
storm (1,000 joins at once, each several round trips) queues far more calls than the pool
has connections; they should wait their turn, a few seconds if need be. A Redis that is
down or paused must instead answer `unavailable` at once, and a queue of a thousand calls
that each wait for a connection, then for their own timeout, would take minutes to drain.

So: at most `slots` calls run at once, the others wait in order, at most `wait` seconds.
When a call finds Redis unreachable (`failed()`), every waiting call fails at once and,
until some call succeeds again (`succeeded()`), new calls do not queue: they run only if a
slot is free (one of them finds out that Redis is back), else fail at once. Pure asyncio:
no I/O here, the engine reports what its calls found.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Gate:
    def __init__(self, slots: int, wait: float) -> None:
        if slots < 1 or wait <= 0:
            raise ValueError("a gate needs slots >= 1 and wait > 0")
        self.slots = slots
        self.wait = wait
        self.down = False
        self._free = slots
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def acquire(self) -> None:
        """A slot, or the builtin ConnectionError (the hub answers `unavailable`)."""
        if self._free > 0 and not self._queue:  # nobody ahead: FIFO for the queued ones
            self._free -= 1
            return
        if self.down:
            raise ConnectionError("redis is unreachable: not queueing behind failing calls")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(fut)
        try:
            async with asyncio.timeout(self.wait):
                await fut
        except TimeoutError as err:
            self._abandon(fut)
            raise ConnectionError(f"redis is busy: no connection within {self.wait}s") from err
        except BaseException:  # cancelled, or failed by failed()
            self._abandon(fut)
            raise

    def _abandon(self, fut: asyncio.Future[None]) -> None:
        if fut in self._queue:
            self._queue.remove(fut)
        elif fut.done() and not fut.cancelled() and fut.exception() is None:
            self.release()  # it was handed a slot in the same tick: pass it on

    def release(self) -> None:
        while self._queue:
            fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot goes straight to the next in line
                return
        self._free += 1

    def failed(self) -> None:
        """A call found Redis unreachable: fail every queued call, stop queueing."""
        self.down = True
        while self._queue:
            fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(ConnectionError("redis is unreachable"))

    def succeeded(self) -> None:
        self.down = False
