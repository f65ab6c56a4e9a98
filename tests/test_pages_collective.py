"""The dashboard in a real browser (Chromium via Playwright, see pages_util.py) against real
personas: a persona's newest trait change from its journal, and a guard stopping a loop as
it happens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from collective_util import FAST, Watcher, bot_card, collective, config, driver, guards, open_thread, watcher
from conftest import HubServer, make_settings, start_hub
from pages_util import browser, expect, live, open_page, shot
from persona_util import eventually

from clients.sdk import Client
from personas.catalog import builtin_cards
from personas.collective.policy import Incoming, Policy, Utterance, View
from personas.memory import InMemoryStore
from personas.runtime import start_embedded
from server.serve import describe

__all__ = ["browser", "collective", "driver", "open_page", "watcher"]  # fixtures, used by name

pytestmark = [pytest.mark.timeout(120)]
POLL = 15_000  # ms: the personas panel reloads every 5 s


def short(value: float) -> str:
    """A number as the dashboard writes it (String(Number(v.toFixed(4))) in dashboard.js)."""
    return f"{round(value, 4):g}"


async def journal(base: str, token: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/personas/samantha?journal=5",
                            headers={"Authorization": f"Bearer {token}"}) as res:
            assert res.status == 200
            return list((await res.json())["journal"])


async def journal_grows_to(base: str, token: str, count: int) -> list[dict[str, Any]]:
    async def grown() -> bool:
        return len(await journal(base, token)) >= count

    await eventually(grown, 10.0)
    return await journal(base, token)


async def test_personas_panel_shows_the_newest_trait_change(tmp_path: Path, open_page: Any) -> None:
    store = InMemoryStore()
    [samantha] = [c for c in builtin_cards() if c.id == "samantha"]
    node = await start_hub(make_settings(tmp_path), catalog=[describe(samantha)], memory=store)
    runtime = await start_embedded(node.url, node.settings.secret, [samantha], store=store, evolve_every=0.05)
    observer = node.token("observer", "watcher", "Watcher")
    try:
        page = await open_page(f"{node.base}/dashboard?token={observer}")
        await live(page)
        row = page.locator('#personas li[data-id="samantha"]')
        await expect(row).to_contain_text("online")
        async with Client(node.url, node.token("human", "ana", "Ana"), backoff=FAST) as ana:
            room = (await ana.join("dm:samantha"))["room"]
            # Two batches, two journal entries: a joke, then questions.
            said = ("haha, you're hilarious :)", "Why is the sky blue? Why do stars twinkle?")
            for n, text in enumerate(said, 1):
                await ana.send(room, text)
                entries = await journal_grows_to(node.base, observer, n)
        newest, older = entries[0], entries[1]
        assert "jokes" in older["why"] and "jokes" not in newest["why"]
        trait, step = next(iter(newest["changes"].items()))
        await expect(row).to_contain_text(f"{trait} {short(step['to'])}", timeout=POLL)
        await expect(row).to_contain_text(newest["why"])
        await expect(row).not_to_contain_text("jokes")  # the older change is not the one shown
        await shot(page, "dashboard-traits.png")
    finally:
        await runtime.stop()
        await node.stop()


class AlwaysThank(Policy):
    """Thanks whoever spoke: two of these would thank each other forever."""

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        return Utterance(f"Thank you so much, {msg.sender_name}! That means a lot.", "answer")


async def test_a_guard_stopping_a_loop_shows_as_it_happens(hub: HubServer, open_page: Any,
                                                           collective: Callable[..., Any], driver: Client,
                                                           watcher: Watcher) -> None:
    page = await open_page(f"{hub.base}/dashboard?token={hub.token('observer', 'screen', 'Screen')}")
    await live(page)
    await expect(page.locator("#dash")).to_be_visible()
    cards = [bot_card("ada", "Ada"), bot_card("bea", "Bea")]
    await collective(cards, config(guards(max_turns=8)), policies={c.id: AlwaysThank() for c in cards})
    await open_thread(driver, "t-loop")
    await watcher.wait_for(lambda _: bool(watcher.notes("t-loop")))
    [note] = watcher.notes("t-loop")
    turns = note["meta"]["turns"]

    guard = page.locator("#feed .item.guard")
    await expect(guard).to_have_count(1)
    await expect(guard.locator(".guard-tag")).to_have_text("echo stopped the loop")
    await expect(guard).to_have_attribute("data-guard", "echo")
    await expect(guard.locator(".text")).to_have_text(note["text"])
    row = page.locator('#threads tr[data-room="collective:all"]')
    await expect(row.locator("td.guard")).to_have_text("echo stopped the loop")
    await expect(row.locator("td.budget")).to_have_text(f"{turns}/8")
    await expect(row.locator("td.budget")).to_have_class("budget stopped")
    # The note is no voice: the room has the driver and the personas who spoke, no more.
    speakers = {m["from"]["id"] for m in watcher.thread("t-loop")}
    await expect(row.locator("td").nth(1)).to_have_text(str(len(speakers)))
    await shot(page, "dashboard-guard.png")
