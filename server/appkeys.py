"""Typed keys of the aiohttp application's state (shared by app.py and api.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.config import Settings
from server.hub import Hub
from server.ws import WsTransport

if TYPE_CHECKING:  # the personas package (and vaderSentiment) only when a store is made
    from personas.memory import MemoryStore

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
TRANSPORT = web.AppKey("transport", WsTransport)
# Public descriptions of the personas this node runs (id, name, mind, greeting, interests…)
CATALOG = web.AppKey("catalog", list[dict[str, Any]])
# What the hub and its embedded personas remember of people (shared, one per node), or
# None on a hub that keeps no memory: no personas of its own and no Redis.
MEMORY: web.AppKey[MemoryStore | None] = web.AppKey("memory")
