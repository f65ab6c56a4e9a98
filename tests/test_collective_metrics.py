"""The collective counted at the hub's /metrics (a real scrape over HTTP): turns by kind and
guard refusals by guard — from personas handed the hub's meter, and from `os1 serve` itself."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from collective_util import FAST, Watcher, bot_card, collective, config, driver, guards, open_thread, watcher
from conftest import HubServer
from persona_util import eventually
from prometheus_client.parser import text_string_to_metric_families

from clients.sdk import Client
from personas.collective.policy import Incoming, Policy, Utterance, View
from server import auth

__all__ = ["collective", "driver", "watcher"]  # fixtures, used by name

OS1 = Path(sys.executable).with_name("os1")
SECRET = "m" * 40


class AlwaysNew(Policy):
    """Always answers, never repeating itself: only the turn bound stops two of these."""

    counter = itertools.count()

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        n = "".join(chr(ord("a") + int(d)) for d in str(next(self.counter)))  # words, not digits
        return Utterance(f"Point {n}: quartz{n} basalt{n} granite{n}.", "answer")


async def scrape(base: str) -> dict[tuple[str, str], float]:
    """The collective's samples: (name, label value) -> value."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as res:
        assert res.status == 200
        text = await res.text()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("os1_collective_") and sample.name.endswith("_total"):
                found[(sample.name, next(iter(sample.labels.values()), ""))] = sample.value
    return found


async def scraped(base: str, check: Callable[[dict[tuple[str, str], float]], bool],
                  limit: float = 10.0) -> dict[tuple[str, str], float]:
    """Scrape until `check` holds: a turn is counted when its ack is back, just after it shows."""
    samples: dict[tuple[str, str], float] = {}

    async def holds() -> bool:
        nonlocal samples
        samples = await scrape(base)
        return check(samples)

    await eventually(holds, limit)
    return samples


async def test_turns_and_guards_are_counted_at_the_hubs_metrics(hub: HubServer, collective: Any,
                                                                 driver: Client, watcher: Watcher) -> None:
    cards = [bot_card("rock-a", "Ada"), bot_card("rock-b", "Bea")]
    runtime = await collective(cards, config(guards(max_turns=4)), meter=hub.hub.metrics.collective,
                               policies={c.id: AlwaysNew() for c in cards})
    await open_thread(driver, "t-metered")
    await watcher.wait_for(lambda _: bool(watcher.notes("t-metered")))
    await watcher.quiet()
    status = runtime.collective_status()
    assert status is not None and status["refused"]["max_turns"] >= 1
    samples = await scraped(hub.base, lambda s: s.get(("os1_collective_turns_total", "answer")) == 3)
    assert samples == {("os1_collective_turns_total", "answer"): 3.0,  # turns 2-4; the driver's is no ours
                       ("os1_collective_guard_total", "max_turns"): float(status["refused"]["max_turns"])}


# -- os1 serve: the real wiring --------------------------------------------------------------
@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """`os1 serve` with its built-in personas and the collective on; its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS1_")}
    env.update(OS1_DATA_DIR=str(tmp_path), OS1_SECRET=SECRET)
    proc = await asyncio.create_subprocess_exec(
        str(OS1), "serve", "--port", "0", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (m := re.search(rb"OS1 hub on (http://\S+)", await proc.stdout.readline())):
                assert proc.returncode is None, "os1 serve exited"
        yield m.group(1).decode()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await proc.wait()


async def test_os1_serve_exposes_its_personas_guard_events(served: str) -> None:
    ws = served.replace("http", "ws", 1) + "/ws"
    observer = Client(ws, auth.mint(SECRET, sub="screen", role="observer"), backoff=FAST)
    await observer.connect()
    await observer.watch("collective:*")
    watching = Watcher(observer)
    token = auth.mint(SECRET, sub="driver", role="persona", name="Driver")
    async with Client(ws, token, backoff=FAST) as drv:
        drain = asyncio.create_task(_drain(drv))
        try:
            # Five turns of a thread, then a question to Atlas as its sixth: the answer would
            # be the seventh, past the default max_turns (6), so the guard stops it.
            for n in range(5):
                await drv.send("collective:all", f"Remark {n} on comets{n} and nebulae{n}.",
                               meta={"thread": "t-served", "kind": "other"})
            await drv.send("collective:all", "Atlas, what about the stars?",
                           meta={"thread": "t-served", "kind": "ask", "topic": "stars", "to": ["atlas"]})
            await watching.wait_for(lambda _: bool(watching.notes("t-served")), 15.0)
        finally:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
    [note] = watching.notes("t-served")
    assert note["from"]["id"] == "atlas" and note["meta"]["guard"] == "max_turns"
    assert (note["meta"]["turns"], note["meta"]["max_turns"]) == (6, 6)
    samples = await scraped(served, lambda s: s.get(("os1_collective_guard_total", "max_turns"), 0) >= 1)
    assert samples[("os1_collective_guard_total", "max_turns")] == 1.0
    await watching.close()
    await observer.close()


async def _drain(client: Client) -> None:
    async for _ in client:
        pass
