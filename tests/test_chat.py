"""`os1 chat` end to end: a real hub, a scripted persona, stdin from a pipe."""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import HubServer, make_settings, start_hub

from clients.chat import build_parser, run_chat
from clients.sdk import Client

FAST = (0.02, 0.2)


class Screen(io.StringIO):
    """stdout for the chat under test; `changed` fires on every write."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.changed.set()
        return super().write(text)

    async def wait_for(self, text: str, limit: float = 10.0) -> None:
        async with asyncio.timeout(limit):
            while text not in self.getvalue():
                self.changed.clear()
                await self.changed.wait()


async def echo_persona(sam: Client, resumed: asyncio.Event | None = None) -> None:
    """Answers each human line with typing, two deltas and the final msg of the stream."""
    async for event in sam:
        if event["t"] == "reconnected" and resumed is not None:
            resumed.set()
        if event["t"] != "msg" or event["from"]["id"] == "samantha":
            continue
        room, stream = event["room"], uuid.uuid4().hex
        reply = f"You said: {event['text']}"
        await sam.typing(room)
        await sam.delta(room, stream, reply[:6])
        await sam.delta(room, stream, reply[6:])
        await sam.send(room, reply, stream=stream, reply_to=event["mid"])


@pytest.fixture
async def persona(hub: HubServer) -> AsyncIterator[Client]:
    sam = Client(hub.url, hub.token(role="persona", sub="samantha", name="Samantha"),
                 backoff=FAST)
    await sam.connect()
    task = asyncio.create_task(echo_persona(sam))
    yield sam
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sam.close()


def chat_args(hub: HubServer, *extra: str) -> Any:
    return build_parser().parse_args(["samantha", "--url", hub.url, *extra])


@pytest.mark.parametrize("fmt", [[], ["--msgpack"]])
async def test_piped_lines_get_streamed_replies(hub: HubServer, persona: Client,
                                                fmt: list[str]) -> None:
    out = io.StringIO()
    stdin = io.StringIO("hello\n\nhow are you?\n")
    code = await asyncio.wait_for(
        run_chat(chat_args(hub, "--grace", "5", *fmt), hub.token(), stdin, out), 10)
    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "[joined dm:samantha:alice]"
    # A reply may stream while the next line is sent; every whole line is still there.
    assert {"You: hello", "Samantha: You said: hello", "You: how are you?",
            "Samantha: You said: how are you?"} <= set(lines)
    assert lines[-1] == "Samantha: You said: how are you?"


async def test_recent_history_is_shown_first(hub: HubServer, persona: Client) -> None:
    await asyncio.wait_for(run_chat(chat_args(hub), hub.token(), io.StringIO("one\n"),
                                    io.StringIO()), 10)
    out = io.StringIO()
    assert await asyncio.wait_for(
        run_chat(chat_args(hub, "--history", "1"), hub.token(), io.StringIO(""), out), 10) == 0
    assert out.getvalue() == (
        "[joined dm:samantha:alice — 1 earlier message]\nSamantha: You said: one\n")


async def test_no_reply_exits_after_the_grace_period(hub: HubServer) -> None:
    out = io.StringIO()
    loop = asyncio.get_running_loop()
    start = loop.time()
    code = await run_chat(chat_args(hub, "--grace", "0.3"), hub.token(), io.StringIO("hi\n"), out)
    assert code == 0 and 0.3 <= loop.time() - start < 5
    assert out.getvalue().endswith("You: hi\n")


async def test_bad_token_exits_2_with_the_fix(hub: HubServer,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_chat(chat_args(hub), "nope", io.StringIO(""), io.StringIO()) == 2
    assert "os1 token --role human --sub YOU" in capsys.readouterr().err


@pytest.mark.parametrize("keep_store", [True, False], ids=["same-store", "fresh-store"])
async def test_chat_survives_a_hub_restart(tmp_path: Any, keep_store: bool) -> None:
    hub = await start_hub(make_settings(tmp_path, drain_timeout=1.0))
    port = int(hub.base.rsplit(":", 1)[1])
    sam = Client(hub.url, hub.token(role="persona", sub="samantha", name="Samantha"),
                 backoff=FAST)
    await sam.connect()
    resumed = asyncio.Event()
    bot = asyncio.create_task(echo_persona(sam, resumed))
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    out = Screen()
    chat = asyncio.create_task(run_chat(chat_args(hub, "--grace", "5"), hub.token(), stdin, out))
    try:
        os.write(write_fd, b"before\n")
        await out.wait_for("You said: before\n")
        await hub.stop()
        engine = hub.hub.engine if keep_store else None
        hub = await start_hub(make_settings(tmp_path, port=port), engine=engine)
        await out.wait_for("[reconnected")
        await asyncio.wait_for(resumed.wait(), 5)  # the persona's inbox is live again
        os.write(write_fd, b"after\n")
        os.close(write_fd)
        assert await asyncio.wait_for(chat, 10) == 0
        text = out.getvalue()
        assert "[reconnecting…]\n" in text
        assert ("lost earlier history" in text) is not keep_store
        assert text.count("Samantha: You said: before\n") == 1
        assert text.endswith("You: after\nSamantha: You said: after\n")
    finally:
        chat.cancel()
        bot.cancel()
        await asyncio.gather(chat, bot, return_exceptions=True)
        await sam.close()
        stdin.close()
        await hub.stop()

