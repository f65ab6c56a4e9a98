"""Typed keys of the aiohttp application's state (shared by app.py and api.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.config import Settings
from server.hub import Hub
from server.ws import WsTransport

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
TRANSPORT = web.AppKey("transport", WsTransport)
# Public descriptions of the personas this node runs (id, name, mind, greeting, interests…)
CATALOG = web.AppKey("catalog", list[dict[str, Any]])
