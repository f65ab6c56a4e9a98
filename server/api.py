"""The hub's small REST API (JSON in, JSON out). Bearer tokens, the same JWTs as /ws."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import auth
from server.appkeys import CATALOG, HUB
from server.errors import Unauthorized
from server.permissions import Role
from server.rooms import valid_id


async def authenticate(request: web.Request, *roles: Role) -> auth.Identity:
    """The caller's identity from `Authorization: Bearer`, or 401/403 with a JSON body."""
    hub = request.app[HUB]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise Unauthorized("send Authorization: Bearer <token>")
        identity = auth.verify(hub.settings.secret, token.strip())
        await hub.check_revoked(identity)
    except Unauthorized as e:
        raise web.HTTPUnauthorized(reason=e.message) from None
    if roles and identity.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise web.HTTPForbidden(reason=f"this needs a {allowed} token")
    return identity


async def _json_body(request: web.Request) -> dict[str, Any]:
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
    body = await _json_body(request)
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
    return web.json_response({"personas": sorted(listed.values(), key=lambda p: p["id"])})


def register(app: web.Application) -> None:
    app.router.add_post("/api/admin/revoke", revoke)
    app.router.add_get("/api/personas", personas)
