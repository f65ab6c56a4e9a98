"""The `os1` command as a newcomer meets it: first run creates a secret and prints working
links; `os1 token` signs with the same secret; bad settings stop start-up by name."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from websockets.asyncio.client import connect

from server import auth

OS1 = Path(sys.executable).with_name("os1")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS1_")}
    return {**env, "OS1_DATA_DIR": str(data_dir), **extra}


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(OS1), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def _hello(url: str, token: str) -> dict:
    async with connect(url) as ws:
        await ws.send(json.dumps({"t": "hello", "id": 1, "token": token}))
        return json.loads(await ws.recv())


async def test_first_run_creates_a_secret_and_prints_working_links(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", OS1_PORT="0")
    proc = await asyncio.create_subprocess_exec(
        str(OS1), "serve", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        banner = ""
        async with asyncio.timeout(20):
            while "dashboard:" not in banner:
                line = (await proc.stdout.readline()).decode()
                assert line, "os1 serve exited before printing its links"
                banner += line
        secret = (tmp_path / "data" / "secret").read_text().strip()
        assert len(secret) >= 32
        assert (tmp_path / "data" / "secret").stat().st_mode & 0o077 == 0
        chat = re.search(r"chat:\s+(\S+)", banner)
        dash = re.search(r"dashboard:\s+(\S+)", banner)
        assert chat and dash
        human = parse_qs(urlparse(chat.group(1)).query)["token"][0]
        observer = parse_qs(urlparse(dash.group(1)).query)["token"][0]
        assert auth.verify(secret, human).role.value == "human"
        assert auth.verify(secret, observer).role.value == "observer"
        ws_url = chat.group(1).split("/?")[0].replace("http", "ws", 1) + "/ws"
        assert (await _hello(ws_url, human))["t"] == "welcome"
        # `os1 token` with the same data dir signs tokens this hub accepts
        code, out, _ = await _run("token", "--role", "admin", "--sub", "root", env=env)
        assert code == 0
        welcome = await _hello(ws_url, out.strip())
        assert welcome["me"] == {"id": "root", "role": "admin", "name": "root"}
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    # a second start keeps the same secret
    assert (tmp_path / "data" / "secret").read_text().strip() == secret


async def test_bad_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    code, _, err = await _run("serve", env=_env(tmp_path, OS1_MAX_FRAME="lots"))
    assert code == 2
    assert "OS1_MAX_FRAME" in err and "--max-frame" in err
    code, _, err = await _run("serve", "--log-format", "xml", env=_env(tmp_path))
    assert code == 2 and "OS1_LOG_FORMAT" in err


async def test_token_refuses_a_bad_id_with_a_message(tmp_path: Path) -> None:
    code, out, err = await _run("token", "--role", "human", "--sub", "no spaces", env=_env(tmp_path))
    assert code == 2 and not out and "bad sub" in err


async def _serve(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        str(OS1), "serve", "--port", "0", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        while not (m := re.search(rb"OS1 hub on (http://\S+)", await proc.stdout.readline())):
            pass
    return proc, m.group(1).decode()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        assert await proc.wait() == 0


async def test_serve_runs_the_builtin_personas_and_samantha_answers(tmp_path: Path) -> None:
    import aiohttp

    from clients.sdk import Client

    env = _env(tmp_path, OS1_SECRET="s" * 40)
    proc, base = await _serve(env)
    try:
        token = auth.mint("s" * 40, sub="alice", role="human", name="Alice")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/personas",
                                headers={"Authorization": f"Bearer {token}"}) as r:
                listed = {p["id"]: p for p in (await r.json())["personas"]}
        assert len(listed) >= 5 and listed["samantha"]["online"] is True
        assert listed["samantha"]["mind"] == "reflex"
        async with Client(base.replace("http", "ws", 1) + "/ws", token) as alice:
            room = (await alice.join("dm:samantha"))["room"]
            await alice.send(room, "Hi, my name is Alice.")
            async with asyncio.timeout(15):
                async for event in alice:
                    if event["t"] == "msg" and event["from"]["id"] == "samantha":
                        break
        assert "Alice" in event["text"]
    finally:
        await _stop(proc)


async def test_serve_without_personas_and_with_a_bad_card_folder(tmp_path: Path) -> None:
    import aiohttp

    proc, base = await _serve(_env(tmp_path, OS1_SECRET="s" * 40, OS1_PERSONAS="none"))
    try:
        token = auth.mint("s" * 40, sub="alice", role="human")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/personas",
                                headers={"Authorization": f"Bearer {token}"}) as r:
                assert (await r.json()) == {"personas": []}
    finally:
        await _stop(proc)
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "bad.toml").write_text('id = "x"\n')
    code, _, err = await _run("serve", env=_env(tmp_path, OS1_PERSONAS=str(tmp_path / "cards")))
    assert code == 2 and "bad.toml" in err


def test_the_banner_says_where_the_secret_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.config import Settings
    from server.serve import secret_source

    settings = Settings(secret="s" * 40, data_dir=str(tmp_path))
    monkeypatch.delenv("OS1_SECRET", raising=False)
    assert secret_source(settings) == f"secret kept in {tmp_path} (set OS1_SECRET to use your own)"
    monkeypatch.setenv("OS1_SECRET", "s" * 40)
    assert secret_source(settings) == "secret from OS1_SECRET"
