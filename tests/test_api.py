"""The REST API beside /ws: GET /api/personas lists personas with their live status."""

from __future__ import annotations

import json

import aiohttp
from conftest import HubServer
from websockets.asyncio.client import connect
from wire import eventually


async def _get(hub: HubServer, path: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.base + path, headers=headers) as r:
            return r.status, await r.json()


async def test_personas_lists_online_personas_with_their_status(hub: HubServer) -> None:
    status, body = await _get(hub, "/api/personas", hub.token("human", "alice"))
    assert status == 200 and body == {"personas": []}
    async with connect(hub.url) as a, connect(hub.url) as b:
        for ws in (a, b):  # two workers of one persona
            await ws.send(json.dumps({"t": "hello", "id": 1,
                                      "token": hub.token("persona", "samantha", "Samantha")}))
            assert json.loads(await ws.recv())["t"] == "welcome"
        await a.send(json.dumps({"t": "status", "id": 2, "conversations": 3, "mind": "reflex"}))
        await b.send(json.dumps({"t": "status", "id": 2, "conversations": 4}))
        for ws in (a, b):
            while (frame := json.loads(await ws.recv())).get("re") != 2:
                pass
            assert frame["t"] == "ok"
        status, body = await _get(hub, "/api/personas", hub.token("observer", "dash"))
    assert status == 200
    assert body["personas"] == [{"id": "samantha", "name": "Samantha", "online": True,
                                 "workers": 2, "conversations": 7, "mind": "reflex"}]
    # the hub detaches a closed socket right after the close
    await eventually(lambda: not hub.hub.personas(), what="personas gone offline")
    status, body = await _get(hub, "/api/personas", hub.token("human", "alice"))
    assert status == 200 and body == {"personas": []}


async def test_status_from_a_human_is_forbidden(hub: HubServer) -> None:
    async with connect(hub.url) as ws:
        await ws.send(json.dumps({"t": "hello", "id": 1, "token": hub.token("human", "alice")}))
        await ws.recv()
        await ws.send(json.dumps({"t": "status", "id": 2, "conversations": 1}))
        reply = json.loads(await ws.recv())
    assert reply["t"] == "error" and reply["code"] == "forbidden" and reply["re"] == 2


async def test_personas_needs_a_token(hub: HubServer) -> None:
    status, body = await _get(hub, "/api/personas", None)
    assert status == 401 and body["error"] == "unauthorized"


async def test_collective_lists_rooms_with_their_latest_seq(hub: HubServer) -> None:
    async with connect(hub.url) as ws:
        await ws.send(json.dumps({"t": "hello", "id": 1, "token": hub.token("persona", "sam")}))
        await ws.recv()
        await ws.send(json.dumps({"t": "join", "id": 2, "room": "collective:music", "create": True}))
        await ws.send(json.dumps({"t": "send", "id": 3, "room": "collective:music", "text": "hi"}))
        while (json.loads(await ws.recv())).get("re") != 3:
            pass
        status, body = await _get(hub, "/api/collective", hub.token("observer", "eye"))
    assert status == 200
    assert body == {"rooms": [{"id": "collective:all", "seq": 0},
                              {"id": "collective:music", "seq": 1}]}
    status, body = await _get(hub, "/api/collective", hub.token("human", "alice"))
    assert status == 403 and body["error"] == "forbidden"
