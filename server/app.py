"""The aiohttp application of one hub node: /ws, health, readiness, metrics, pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from server import api, api_me, pages
from server.appkeys import CATALOG, HUB, MEMORY, SETTINGS, TRANSPORT
from server.config import Settings
from server.engine.base import Engine
from server.engine.memory import MemoryEngine
from server.errors import CloseCode
from server.hub import Hub
from server.metrics import Metrics
from server.ws import WsTransport

if TYPE_CHECKING:
    from personas.memory import MemoryStore

__all__ = ["HUB", "SETTINGS", "TRANSPORT", "create_app", "make_engine"]


def make_engine(settings: Settings) -> Engine:
    if settings.redis_url:
        from server.engine.redis import RedisEngine  # type: ignore[import-not-found,unused-ignore]

        return RedisEngine(settings)  # type: ignore[no-any-return,unused-ignore]
    return MemoryEngine(history=settings.history, cid_ttl=settings.cid_ttl)


def create_app(settings: Settings, engine: Engine | None = None,
               catalog: list[dict[str, Any]] | None = None,
               memory: MemoryStore | None = None) -> web.Application:
    """A ready-to-run app; `settings` must have its secret and node filled in. `catalog`
    describes the personas this node runs itself (listed by GET /api/personas); `memory` is
    the store they share, served under /api/me/ (the app closes it on cleanup)."""
    if not settings.secret:
        raise ValueError("settings.secret is empty: call Settings.with_defaults_filled() first")
    middlewares: list[Any] = [json_errors]  # a plain-function middleware: see json_errors
    app = web.Application(client_max_size=settings.max_frame, middlewares=middlewares)
    metrics = Metrics()
    transport = WsTransport(settings, metrics)
    hub = Hub(settings, engine or make_engine(settings), metrics, transport.close)
    transport.hub = hub
    app[SETTINGS] = settings
    app[HUB] = hub
    app[TRANSPORT] = transport
    app[CATALOG] = catalog or []
    app[MEMORY] = memory
    app.cleanup_ctx.append(_engine_ctx)
    app.on_shutdown.append(_drain)
    app.router.add_get("/ws", transport.handle)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    api.register(app)
    api_me.register(app)
    pages.register(app)
    return app


@web.middleware
def json_errors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Every HTTP error answers with a JSON body: {"error": code, "message": why}.

    A plain function, so /ws is passed straight through: a wrapping coroutine would stay
    alive (~600 bytes) for as long as each WebSocket is open.
    """
    if request.path == "/ws":
        return handler(request)
    return _json_errors(request, handler)


async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = getattr(exc, "error_code", None) or _HTTP_CODES.get(
            exc.status, "bad_request" if exc.status < 500 else "internal")
        message = (exc.text or exc.reason).removeprefix(f"{exc.status}: ").strip()
        return web.json_response({"error": code, "message": message}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items()
                                          if k.lower() == "allow"})


_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_request",
               413: "too_large", 429: "rate_limited", 503: "unavailable"}


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = app[HUB].engine
    await engine.start()
    yield
    await engine.close()
    store = app[MEMORY]
    if store is not None:
        await store.close()


async def _drain(app: web.Application) -> None:
    hub, transport = app[HUB], app[TRANSPORT]
    hub.draining = True  # /ws now answers 503 and /readyz fails
    for conn in list(transport.sockets):
        transport.close(conn, CloseCode.GOING_AWAY, "server draining")
    await transport.wait_closed(app[SETTINGS].drain_timeout)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _readyz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    engine_ok = False
    if not hub.draining:
        try:
            engine_ok = await hub.engine.ready()
        except (ConnectionError, TimeoutError, OSError):
            engine_ok = False
    body = {"ready": engine_ok, "engine": hub.engine.name, "draining": hub.draining}
    return web.json_response(body, status=200 if engine_ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[HUB].metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})
