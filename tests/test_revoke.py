"""Token revocation: POST /api/admin/revoke closes live sessions with 4003 and refuses the
revoked tokens afterwards; the API answers bad input with JSON errors."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets
from conftest import HubServer
from websockets.asyncio.client import connect


async def _hello(hub: HubServer, token: str) -> websockets.asyncio.client.ClientConnection:
    ws = await connect(hub.url)
    await ws.send(json.dumps({"t": "hello", "id": 1, "token": token}))
    return ws


async def test_revoke_closes_live_sessions_with_4003_and_refuses_old_tokens(hub: HubServer) -> None:
    old = hub.token("human", "mallory")
    ws = await _hello(hub, old)
    assert json.loads(await ws.recv())["t"] == "welcome"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hub.base}/api/admin/revoke", json={"sub": "mallory"},
                             headers={"Authorization": f"Bearer {hub.token('admin', 'root')}"}) as r:
            assert r.status == 200
            assert (await r.json())["revoked"] == "mallory"
    async with asyncio.timeout(5):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
    assert ws.close_code == 4003
    again = await _hello(hub, old)
    reply = json.loads(await again.recv())
    assert reply["t"] == "error" and reply["code"] == "unauthorized" and reply["re"] == 1
    async with asyncio.timeout(5):
        with pytest.raises(websockets.ConnectionClosed):
            await again.recv()
    assert again.close_code == 4001


@pytest.mark.parametrize(
    ("role", "body", "status", "code"),
    [
        ("human", {"sub": "x"}, 403, "forbidden"),
        ("admin", {"sub": "not valid!"}, 400, "bad_request"),
        ("admin", ["sub"], 400, "bad_request"),
        (None, {"sub": "x"}, 401, "unauthorized"),
    ],
)
async def test_revoke_rejects_bad_input_with_json(hub: HubServer, role: str | None, body: object,
                                                  status: int, code: str) -> None:
    headers = {"Authorization": f"Bearer {hub.token(role, 'root')}"} if role else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hub.base}/api/admin/revoke", json=body, headers=headers) as r:
            assert r.status == status
            payload = await r.json()
    assert payload["error"] == code and payload["message"]
