"""Typed keys of the aiohttp application's state (shared by app.py and api.py)."""

from __future__ import annotations

from aiohttp import web

from server.config import Settings
from server.hub import Hub
from server.ws import WsTransport

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
TRANSPORT = web.AppKey("transport", WsTransport)
