"""`os1 personas run` as its own process against a real hub: the bring-your-own-process path."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import HubServer
from persona_util import people

__all__ = ["people"]  # a fixture, used by name

ENTRY = "import sys; from personas.cli import main; sys.exit(main(sys.argv[1:]))"


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc, self.lines = proc, list[str]()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace"))

    async def wait_for(self, text: str, limit: float = 15.0) -> None:
        async with asyncio.timeout(limit):
            while not any(text in line for line in self.lines):
                if self.reader.done():
                    raise AssertionError(f"process ended before {text!r}: {''.join(self.lines)}")
                await asyncio.sleep(0.05)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await self.proc.wait()
            await self.reader
        return code


@pytest.fixture
async def run_cli() -> AsyncIterator[Callable[..., Any]]:
    started: list[Proc] = []

    async def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ENTRY, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})})
        started.append(Proc(proc))
        return started[-1]

    yield start
    for proc in started:
        if proc.proc.returncode is None:
            proc.proc.kill()
            await proc.proc.wait()
        await proc.reader


async def test_run_one_persona_with_its_token(hub: HubServer, run_cli: Callable[..., Any],
                                              people: Callable[..., Any]) -> None:
    proc = await run_cli("run", "--url", hub.url, "--token", hub.token("persona", "atlas", "Atlas"),
                         "--pace", "0")
    await proc.wait_for("personas online: atlas")
    alice = await people("alice", persona="atlas")
    reply = await alice.ask("Hello! My name is Ana.")
    assert reply.msg["from"]["id"] == "atlas" and "Ana" in reply.text
    assert await proc.stop() == 0


async def test_run_every_card_with_the_hub_secret(hub: HubServer, run_cli: Callable[..., Any],
                                                  people: Callable[..., Any], tmp_path: Any) -> None:
    proc = await run_cli("run", "--url", hub.url, "--all", "--pace", "0",
                         env={"OS1_SECRET": hub.settings.secret, "OS1_DATA_DIR": str(tmp_path)})
    await proc.wait_for("personas online: atlas, juniper, kit, nova, samantha")
    reply = await (await people("alice", persona="nova")).ask("hi")
    assert reply.msg["from"]["id"] == "nova"
    assert await proc.stop() == 0


async def test_a_token_for_someone_else_is_refused(hub: HubServer, run_cli: Callable[..., Any]) -> None:
    token = hub.token("human", "alice")
    proc = await run_cli("run", "--url", hub.url, "--token", token, "--card", "samantha")
    async with asyncio.timeout(15):
        assert await proc.proc.wait() == 1
    await proc.reader
    assert "could not start" in "".join(proc.lines)
    assert "not persona 'samantha'" in "".join(proc.lines)
