"""The hub's small REST API (JSON in, JSON out). Bearer tokens, the same JWTs as /ws.

    POST /api/admin/revoke {"sub": id}   admin: drop every token of `sub` issued so far
    GET  /api/personas                   every persona: card, online, workers, conversations
    GET  /api/personas/{id}?journal=N    one persona: the same, its traits as they drifted
                                         and its last N (default 20) journal entries
    /api/me/...                          the caller's memory and consent: server/api_me.py
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from server import auth
from server.appkeys import CATALOG, HUB, MEMORY
from server.errors import Unauthorized
from server.permissions import Role
from server.rooms import COLLECTIVE_ALL, valid_id


async def authenticate(request: web.Request, *roles: Role) -> auth.Identity:
    """The caller's identity from `Authorization: Bearer`, or 401/403 with a JSON body."""
    try:
        identity = await request.app[HUB].from_bearer(request.headers.get("Authorization", ""))
    except Unauthorized as e:
        raise web.HTTPUnauthorized(reason=e.message) from None
    if roles and identity.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise web.HTTPForbidden(reason=f"this needs a {allowed} token")
    return identity


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(reason="the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return body


async def revoke(request: web.Request) -> web.Response:
    """POST /api/admin/revoke {"sub": id}: drop every token of `sub` issued so far."""
    await authenticate(request, Role.ADMIN)
    body = await json_body(request)
    sub = body.get("sub")
    if not valid_id(sub):
        raise web.HTTPBadRequest(reason="'sub' must be a user or persona id")
    upto = await request.app[HUB].revoke(str(sub))
    return web.json_response({"revoked": sub, "upto": upto})


async def personas(request: web.Request) -> web.Response:
    """GET /api/personas: every known persona (cards of this node, and who is online)."""
    await authenticate(request)
    hub = request.app[HUB]
    online = hub.personas()
    listed: dict[str, dict[str, Any]] = {}
    for card in request.app[CATALOG]:
        listed[card["id"]] = {**card, "online": False, "workers": 0, "conversations": 0}
    for pid, entry in online.items():
        listed[pid] = {**listed.get(pid, {}), **entry,
                       "mind": entry["mind"] or listed.get(pid, {}).get("mind")}
    store = request.app[MEMORY]
    if store is not None:  # the newest trait change of each, and workers on every node
        try:
            for pid, entry in listed.items():
                latest = await store.journal(pid, 1)
                entry["last_change"] = latest[0].to_dict() if latest else None
                _add_workers(entry, await store.workers(pid))
        except ConnectionError:
            pass  # the list stays useful without it
    return web.json_response({"personas": sorted(listed.values(), key=lambda p: p["id"])})


async def persona(request: web.Request) -> web.Response:
    """GET /api/personas/{id}: the card, live status, current traits, journal (newest first)."""
    await authenticate(request)
    pid = request.match_info["id"]
    if not valid_id(pid):
        raise web.HTTPBadRequest(reason=f"{pid[:80]!r} is not a persona id")
    limit = _count(request, "journal", JOURNAL_SHOWN, JOURNAL_MAX)
    card = next((c for c in request.app[CATALOG] if c["id"] == pid), None)
    online = request.app[HUB].personas().get(pid)
    store = request.app[MEMORY]
    stored: dict[str, float] = {}
    journal: list[dict[str, Any]] = []
    if store is not None:
        try:
            character = await store.character(pid)
            stored = dict(character.traits)
            journal = [e.to_dict() for e in await store.journal(pid, limit)]
        except ConnectionError:
            raise web.HTTPServiceUnavailable(reason="the memory store cannot be reached") from None
    if card is None and online is None and not stored:
        raise web.HTTPNotFound(reason=f"no persona {pid!r} on this hub")
    body: dict[str, Any] = {"id": pid, "name": pid, **(card or {}), "online": False, "workers": 0,
                            "conversations": 0}
    if online is not None:
        body.update({**online, "mind": online["mind"] or body.get("mind")})
    if store is not None:
        with contextlib.suppress(ConnectionError):
            _add_workers(body, await store.workers(pid))
    body["traits"] = traits_view((card or {}).get("traits", {}), stored)
    body["journal"] = journal
    return web.json_response(body)


def _add_workers(entry: dict[str, Any], loads: dict[str, int]) -> None:
    """Workers of the persona's roster in the store: on every node sharing it (Redis). The
    hub's own count wins when it sees more (outside workers may keep another store)."""
    if len(loads) > entry.get("workers", 0):
        entry.update(online=True, workers=len(loads), conversations=sum(loads.values()))


JOURNAL_SHOWN = 20
JOURNAL_MAX = 100  # what a store keeps per persona (personas/evolution.py)


def traits_view(bounds: dict[str, dict[str, float]], stored: dict[str, float]) -> dict[str, Any]:
    """Each trait's value now (stored, else the card's start, within the card's bounds) with
    its start, min and max; a trait only the store knows (a persona without a card here) has
    its value alone."""
    view: dict[str, Any] = {}
    for name, b in bounds.items():
        value = min(b["max"], max(b["min"], stored.get(name, b["start"])))
        view[name] = {"value": value, "start": b["start"], "min": b["min"], "max": b["max"]}
    for name, value in stored.items():
        view.setdefault(name, {"value": value})
    return view


def _count(request: web.Request, name: str, default: int, most: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > most:
        raise web.HTTPBadRequest(reason=f"'{name}' must be a whole number from 0 to {most}")
    return int(raw)


COLLECTIVE_LIST_MAX = 500


async def collective(request: web.Request) -> web.Response:
    """GET /api/collective: the collective rooms and their latest seq (observers, admins,
    personas) — so a dashboard can replay threads it was not watching when they began."""
    await authenticate(request, Role.OBSERVER, Role.ADMIN, Role.PERSONA)
    engine = request.app[HUB].engine
    names = [COLLECTIVE_ALL, *await engine.rooms("collective", COLLECTIVE_LIST_MAX)]
    rooms = []
    for room in names:
        page = await engine.read_after(room, 1 << 62, 1)  # an empty page: only `last` matters
        rooms.append({"id": room, "seq": page.last})
    return web.json_response({"rooms": rooms})


def register(app: web.Application) -> None:
    app.router.add_post("/api/admin/revoke", revoke)
    app.router.add_get("/api/personas", personas)
    app.router.add_get("/api/collective", collective)
    app.router.add_get("/api/personas/{id}", persona)
