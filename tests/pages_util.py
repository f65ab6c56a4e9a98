"""The browser for the page tests (imported like `sdk_util.py`): Playwright driving Debian's
Chromium at /usr/bin/chromium (never a downloaded one), pages that fail the test on any
script or console error, screenshots in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

playwright = pytest.importorskip("playwright.async_api")
expect = playwright.expect

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


# -- the browser -------------------------------------------------------------------------
@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright.async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def open_page(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Pages that fail the test on any script error or console error (a CSP refusal is one)."""
    errors: list[str] = []
    contexts: list[Any] = []

    async def open_(url: str, viewport: dict[str, int] | None = None) -> Any:
        context = await browser.new_context(viewport=viewport or {"width": 1100, "height": 800})
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text} at {msg.location['url']}")
                if msg.type == "error" else None)
        await page.goto(url)
        return page

    yield open_
    for context in contexts:
        await context.close()
    assert [e for e in errors if not expected(e)] == []


def expected(error: str) -> bool:
    # the socket the hub cut on purpose (reconnect test); REST endpoints this hub lacks (404)
    return "WebSocket connection" in error or bool(re.search(r"status of 404 .* at http://[^ ]+/api/", error))


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def live(page: Any) -> None:
    await expect(page.locator("#status")).to_have_text("connected")
