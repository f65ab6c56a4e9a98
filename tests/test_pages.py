"""The pages in a real browser: Playwright driving Debian's Chromium (never a downloaded one).

`bash scripts/test` installs /usr/bin/chromium when it is missing. The personas here are tiny
SDK clients run by the test itself, so each step of a streamed reply can be held and checked.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import HubServer, make_settings, start_hub
from pages_util import browser, expect, live, open_page, shot
from sdk_util import FAST

from clients.sdk import Client
from personas.catalog import builtin_cards
from personas.memory import InMemoryStore
from personas.runtime import start_embedded
from server.app import TRANSPORT
from server.errors import CloseCode
from server.pages import CSP
from server.serve import describe

__all__ = ["browser", "open_page"]  # fixtures, used by name

PHONE = {"width": 360, "height": 740}

# No skip when Chromium is missing: scripts/test installs it, and a missing browser must
# fail the run rather than hide the page tests.
pytestmark = [pytest.mark.timeout(120)]


# -- a persona run by the test ---------------------------------------------------------
class Persona:
    """Answers each dm message: `typing`, two deltas, then the final send with the same
    stream id. `deltas` and `final` gate the steps (set them up front for a fluent persona)."""

    def __init__(self, client: Client, pid: str) -> None:
        self.client, self.id = client, pid
        self.deltas, self.final = asyncio.Event(), asyncio.Event()
        self.heard: list[dict[str, Any]] = []
        self.typing_from: list[str] = []
        self.typed = asyncio.Event()

    async def run(self) -> None:
        async for event in self.client:
            if not str(event.get("room", "")).startswith(f"dm:{self.id}:"):
                continue
            if event["t"] == "typing" and event["from"]["id"] != self.id:
                self.typing_from.append(event["from"]["id"])
                self.typed.set()
            elif event["t"] == "msg" and event["from"]["id"] != self.id:
                self.heard.append(event)
                await self.answer(event)

    async def answer(self, msg: dict[str, Any]) -> None:
        room, stream = msg["room"], f"r-{msg['mid']}"
        await self.client.typing(room)
        await self.deltas.wait()
        await self.client.delta(room, stream, "Of course. ")
        await self.client.delta(room, stream, "What's on")
        await self.final.wait()
        await self.client.send(room, "Of course. What's on Monday?", stream=stream, cid=stream,
                               reply_to=msg["seq"])


@pytest.fixture
async def start_persona(hub: HubServer) -> AsyncIterator[Callable[..., Awaitable[Persona]]]:
    tasks: list[asyncio.Task[None]] = []
    clients: list[Client] = []

    async def start(pid: str = "samantha", name: str = "Samantha", fluent: bool = False) -> Persona:
        client = Client(hub.url, hub.token("persona", pid, name), backoff=FAST)
        await client.connect()
        clients.append(client)
        persona = Persona(client, pid)
        if fluent:
            persona.deltas.set()
            persona.final.set()
        tasks.append(asyncio.create_task(persona.run()))
        return persona

    yield start
    for client in clients:
        await client.close()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def persona_clients(hub: HubServer) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    opened: list[Client] = []

    async def connect(pid: str, name: str) -> Client:
        client = Client(hub.url, hub.token("persona", pid, name), backoff=FAST)
        await client.connect()
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()


def bubbles(page: Any) -> Any:
    return page.locator("#log .msg")


# -- serving -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/dashboard", "/static/chat.js", "/static/style.css"])
async def test_pages_are_served_with_csp_and_no_cache(hub: HubServer, path: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(hub.base + path) as res:
        assert res.status == 200
        assert res.headers["Content-Security-Policy"] == CSP
        assert res.headers["Cache-Control"] == "no-cache"
        assert res.headers["X-Content-Type-Options"] == "nosniff"
        etag = res.headers["ETag"]
        async with http.get(hub.base + path, headers={"If-None-Match": etag}) as again:
            assert again.status == 304
        async with http.get(hub.base + "/static/nope.js") as missing:
            assert missing.status == 404


# -- the web chat --------------------------------------------------------------------------
async def test_token_leaves_the_address_bar(hub: HubServer, open_page: Any) -> None:
    token = hub.token("human", "alice", "Alice")
    page = await open_page(f"{hub.base}/?token={token}#here")
    await live(page)
    assert "token" not in page.url and page.url.endswith("/#here")
    assert await page.evaluate("sessionStorage.getItem('os1.token')") == token
    await page.reload()  # the token survives a reload, from sessionStorage
    await live(page)


async def test_sign_in_form_takes_a_pasted_token(hub: HubServer, open_page: Any) -> None:
    page = await open_page(f"{hub.base}/")
    await expect(page.locator("#signin-view")).to_be_visible()
    await page.get_by_label("Paste your token").fill(hub.token("human", "alice", "Alice"))
    await page.get_by_role("button", name="Sign in").click()
    await live(page)
    await expect(page.locator("#pick-view")).to_be_visible()


async def test_chat_streams_the_reply_then_history_comes_back(
    hub: HubServer, open_page: Any, start_persona: Any
) -> None:
    samantha = await start_persona()
    page = await open_page(f"{hub.base}/?token={hub.token('human', 'alice', 'Alice')}")
    await live(page)
    await page.get_by_role("button", name=re.compile("Samantha, online")).click()
    await expect(page.locator("#chat-name")).to_have_text("Samantha")

    box = page.get_by_label("Message to Samantha")
    await box.press_sequentially("Hi! Can you help me plan my week?", delay=5)
    await asyncio.wait_for(samantha.typed.wait(), 5)  # the person's typing reached her
    await box.press("Enter")
    await expect(page.locator("#typing")).to_have_text("Samantha is typing…")
    samantha.deltas.set()
    draft = page.locator("#log .msg.streaming .text")
    await expect(draft).to_have_text("Of course. What's on")
    await shot(page, "chat-streaming.png")
    samantha.final.set()
    final = page.locator('#log .msg.theirs[data-seq="2"] .text')
    await expect(final).to_have_text("Of course. What's on Monday?")
    await expect(page.locator("#log .msg.streaming")).to_have_count(0)
    await expect(page.locator("#typing")).to_have_text("")
    await expect(bubbles(page)).to_have_count(2)
    assert samantha.heard[0]["text"] == "Hi! Can you help me plan my week?"

    assert samantha.typing_from == ["alice"]  # one `typing` per 3 s, however many keys

    await page.reload()
    await live(page)
    await expect(bubbles(page)).to_have_count(2)
    await page.wait_for_timeout(300)  # the join's replay lands after the history: still 2
    assert await bubbles(page).evaluate_all("els => els.map(e => e.dataset.seq)") == ["1", "2"]
    await shot(page, "chat.png")


async def test_chat_reconnects_by_itself_and_resumes(
    hub: HubServer, open_page: Any, start_persona: Any
) -> None:
    samantha = await start_persona(fluent=True)
    page = await open_page(f"{hub.base}/?token={hub.token('human', 'alice', 'Alice')}&persona=samantha")
    await live(page)
    await page.get_by_label("Message to Samantha").fill("hello")
    await page.get_by_role("button", name="Send").click()
    await expect(bubbles(page)).to_have_count(2)

    transport = hub.app[TRANSPORT]
    [conn] = [c for c in transport.sockets if c.identity is not None and c.identity.id == "alice"]
    transport.close(conn, CloseCode.GOING_AWAY, "test")
    # said while the page is away: it comes back with the join's `since`, exactly once
    await samantha.client.send("dm:samantha:alice", "Are you still there?")
    await expect(page.locator("#log .msg.theirs .text").last).to_have_text("Are you still there?")
    await live(page)
    await expect(bubbles(page)).to_have_count(3)
    await page.get_by_label("Message to Samantha").fill("yes")
    await page.get_by_role("button", name="Send").click()
    await expect(bubbles(page)).to_have_count(5)


async def test_memory_view_and_consent_say_when_the_hub_lacks_them(
    hub: HubServer, open_page: Any
) -> None:
    page = await open_page(f"{hub.base}/?token={hub.token('human', 'alice', 'Alice')}&persona=samantha")
    await live(page)
    await page.get_by_role("button", name="What Samantha knows").click()
    dialog = page.get_by_role("dialog", name="What Samantha knows about you")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#memory-body")).to_contain_text("not available on this hub yet")
    await expect(page.locator("#consent-msg")).to_contain_text("not available on this hub yet")
    await expect(page.get_by_role("radio", name=re.compile("Topics only"))).to_be_disabled()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()


async def test_memory_view_lists_facts_and_forgets_them(tmp_path: Path, open_page: Any) -> None:
    """The real endpoints: Samantha (reflex) learns in the chat, the page shows what she knows
    and forgets it; the store she shares with the hub is read directly after each step."""
    store = InMemoryStore()
    samantha = [c for c in builtin_cards() if c.id == "samantha"]
    node = await start_hub(make_settings(tmp_path), catalog=[describe(samantha[0])], memory=store)
    runtime = await start_embedded(node.url, node.settings.secret, samantha, store=store)
    try:
        page = await open_page(f"{node.base}/?token={node.token('human', 'alice', 'Alice')}&persona=samantha")
        await live(page)
        box = page.get_by_label("Message to Samantha")
        await box.fill("My name is Ana. I live in Lisbon and I love jazz.")
        await box.press("Enter")
        await expect(page.locator("#log .msg.theirs")).to_have_count(1)

        await page.get_by_role("button", name="What Samantha knows").click()
        await expect(page.locator(".facts li")).to_have_count(3)
        await expect(page.locator(".facts li").first).to_contain_text("from message #1")
        await expect(page.locator("#memory-body")).to_contain_text("likes")
        await expect(page.locator("#memory-body")).not_to_contain_text("dislikes")  # empty: hidden
        await expect(page.get_by_role("radio", name=re.compile("Topics only"))).to_be_checked()
        await shot(page, "chat-memory.png")

        await page.get_by_role("button", name="Forget: You live in Lisbon").click()
        await expect(page.locator(".facts li")).to_have_count(2)
        memory = await store.get("samantha", "alice")
        assert memory is not None and "Lisbon" not in {f.value for f in memory.facts}

        await page.get_by_role("radio", name=re.compile("Nothing")).check()
        await expect(page.locator("#consent-msg")).to_have_text("Saved: none.")
        assert await store.consent("alice") == "none"

        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.get_by_role("button", name="Forget everything").click()
        await expect(page.locator("#memory-body")).to_contain_text("Nothing remembered")
        memory = await store.get("samantha", "alice")
        assert memory is not None and memory.facts == []
        await page.keyboard.press("Escape")
        await page.reload()  # the consent is the hub's, not the page's
        await live(page)
        await page.get_by_role("button", name="What Samantha knows").click()
        await expect(page.get_by_role("radio", name=re.compile("Nothing"))).to_be_checked()
    finally:
        await runtime.stop()
        await node.stop()


async def test_voice_toggle_is_off_by_default_and_remembered(hub: HubServer, open_page: Any) -> None:
    page = await open_page(f"{hub.base}/?token={hub.token('human', 'alice', 'Alice')}&persona=samantha")
    await live(page)
    voice = page.get_by_label("Voice")
    await expect(voice).not_to_be_checked()
    await voice.check()
    await page.reload()
    await expect(page.get_by_label("Voice")).to_be_checked()


# -- the dashboard -------------------------------------------------------------------------
async def test_dashboard_shows_a_collective_exchange_as_it_happens(
    hub: HubServer, open_page: Any, persona_clients: Any
) -> None:
    page = await open_page(f"{hub.base}/dashboard?token={hub.token('observer', 'watcher', 'Watcher')}")
    await live(page)
    await expect(page.locator("#dash")).to_be_visible()
    assert "token" not in page.url

    atlas = await persona_clients("atlas", "Atlas")
    samantha = await persona_clients("samantha", "Samantha")
    await atlas.join("collective:test", create=True)
    await samantha.join("collective:test")
    await atlas.send("collective:test", "What do people mean by 'home'?")
    feed = page.locator("#feed .item .text")
    await expect(feed.first).to_have_text("What do people mean by 'home'?")
    await samantha.send("collective:test", "A place where they are expected.",
                        meta={"thread": "t1", "turn": 2, "max_turns": 6})
    await expect(feed.first).to_have_text("A place where they are expected.")  # newest first
    budget = page.locator('#threads tr[data-room="collective:test"] td.budget')
    await expect(budget).to_have_text("2/6")  # the thread's guard budget, from msg meta
    await expect(feed).to_have_count(2)

    edge = page.locator('#graph .edge[data-a="atlas"][data-b="samantha"]')
    await expect(edge).to_have_attribute("data-weight", "1")
    await expect(page.locator('#threads tr[data-room="collective:test"] td').first).to_have_text("2")
    await expect(page.locator('#personas li[data-id="atlas"]')).to_contain_text("online")

    # a streamed turn shows while it is written, then becomes the message
    await samantha.delta("collective:test", "s-1", "Or where ")
    await expect(page.locator("#feed .streaming .text")).to_have_text("Or where ")
    await samantha.send("collective:test", "Or where someone waits.", stream="s-1")
    await expect(feed.first).to_have_text("Or where someone waits.")
    await expect(page.locator("#feed .streaming")).to_have_count(0)
    await expect(edge).to_have_attribute("data-weight", "1")  # same speaker twice: no new edge
    await shot(page, "dashboard.png")

    # a reload replays the history of the rooms seen, without duplicates
    await atlas.send("collective:test", "Then we are at home here.")
    await page.reload()
    await live(page)
    await expect(feed).to_have_count(4)
    await expect(feed.first).to_have_text("Then we are at home here.")
    await expect(edge).to_have_attribute("data-weight", "2")


async def test_dashboard_catches_up_after_a_reconnect(
    hub: HubServer, open_page: Any, persona_clients: Any
) -> None:
    page = await open_page(f"{hub.base}/dashboard?token={hub.token('observer', 'watcher')}")
    await live(page)
    atlas = await persona_clients("atlas", "Atlas")
    await atlas.join("collective:night", create=True)
    await atlas.send("collective:night", "one")
    feed = page.locator("#feed .item .text")
    await expect(feed).to_have_count(1)

    transport = hub.app[TRANSPORT]
    [conn] = [c for c in transport.sockets if c.identity is not None and c.identity.id == "watcher"]
    transport.close(conn, CloseCode.GOING_AWAY, "test")
    for text in ("two", "three"):  # said while the page may be away: replayed from history
        await atlas.send("collective:night", text)
    await expect(feed).to_have_text(["three", "two", "one"])
    await live(page)


async def test_dashboard_refuses_a_human_token(hub: HubServer, open_page: Any) -> None:
    page = await open_page(f"{hub.base}/dashboard?token={hub.token('human', 'alice', 'Alice')}")
    await expect(page.locator("#signin-msg")).to_contain_text("This page needs an observer token")
    await expect(page.get_by_label("Paste an observer token")).to_be_visible()
    await expect(page.locator("#dash")).to_be_hidden()
    assert await page.evaluate("sessionStorage.getItem('os1.token')") is None
    await shot(page, "dashboard-refused.png")
    # the form then takes a good one
    await page.get_by_label("Paste an observer token").fill(hub.token("observer", "watcher"))
    await page.get_by_role("button", name="Watch").click()
    await expect(page.locator("#dash")).to_be_visible()


# -- phone width ---------------------------------------------------------------------------
async def no_horizontal_scroll(page: Any) -> None:
    root = "document.documentElement"
    scroll, client = await page.evaluate(f"[{root}.scrollWidth, {root}.clientWidth]")
    assert scroll <= client, (scroll, client)


async def test_phone_width_has_no_horizontal_scroll(
    hub: HubServer, open_page: Any, start_persona: Any, persona_clients: Any
) -> None:
    await start_persona(fluent=True)
    chat = await open_page(f"{hub.base}/?token={hub.token('human', 'alice', 'Alice')}", PHONE)
    await live(chat)
    await shot(chat, "phone-pick.png")
    await no_horizontal_scroll(chat)
    await chat.get_by_role("button", name=re.compile("Samantha")).click()
    await chat.get_by_label("Message to Samantha").fill("A rather long message " * 8 + "x" * 80)
    await chat.get_by_label("Message to Samantha").press("Enter")
    await expect(bubbles(chat)).to_have_count(2)
    await no_horizontal_scroll(chat)
    await shot(chat, "phone-chat.png")

    dash = await open_page(f"{hub.base}/dashboard?token={hub.token('observer', 'watcher')}", PHONE)
    await live(dash)
    atlas = await persona_clients("atlas", "Atlas")
    await atlas.join("collective:a-rather-long-topic-name-for-a-small-screen", create=True)
    await atlas.send("collective:a-rather-long-topic-name-for-a-small-screen", "y" * 200)
    await expect(dash.locator("#feed .item")).to_have_count(1)
    await no_horizontal_scroll(dash)
    await shot(dash, "phone-dashboard.png")
