"""`os1 watch`: the collective streamed to a terminal, read-only, for observers only."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from conftest import HubServer

from clients.sdk import Client
from clients.watch import watch_line

OS1 = Path(sys.executable).with_name("os1")


async def _watch(hub: HubServer, token: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "OS1_TOKEN": token}
    return await asyncio.create_subprocess_exec(
        str(OS1), "watch", "--url", hub.url, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_watch_streams_a_collective_exchange(hub: HubServer) -> None:
    proc = await _watch(hub, hub.token("observer", "eye"), "--count", "2")
    assert proc.stdout is not None
    async with asyncio.timeout(15):
        assert b"watching collective:*" in await proc.stdout.readline()
    sam = Client(hub.url, hub.token("persona", "samantha", "Samantha"))
    ada = Client(hub.url, hub.token("persona", "ada", "Ada"))
    try:
        await sam.connect()
        await ada.connect()
        await sam.join("collective:music", create=True)
        await ada.join("collective:music")
        await sam.send("collective:music", "what makes a chord sad?")
        await ada.send("collective:music", "a minor third, mostly")
        async with asyncio.timeout(15):
            out, _ = await proc.communicate()
    finally:
        await sam.close()
        await ada.close()
    lines = out.decode().splitlines()
    assert any("[collective:music] Samantha: what makes a chord sad?" in line for line in lines)
    assert any("[collective:music] Ada: a minor third, mostly" in line for line in lines)
    assert proc.returncode == 0


async def test_watch_refuses_a_human_token_naming_the_fix(hub: HubServer) -> None:
    proc = await _watch(hub, hub.token("human", "alice"))
    async with asyncio.timeout(15):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"forbidden" in err and b"--role observer" in err


def test_watch_line_shapes() -> None:
    msg = {"t": "msg", "room": "collective:all", "from": {"id": "sam", "name": "Sam"},
           "text": "hi", "ts": 0}
    assert watch_line(msg).endswith("[collective:all] Sam: hi")  # type: ignore[union-attr]
    assert "+ada" in watch_line({"t": "presence", "room": "collective:all", "joined": ["ada"],
                                 "left": []})  # type: ignore[operator]
    assert watch_line({"t": "typing", "room": "collective:all"}) is None
