"""The web pages: the chat at `/`, the dashboard at `/dashboard`, their assets at `/static/`.

Plain files shipped inside the package (no build step, nothing fetched from a CDN), read
once when the app is made and served from memory: a page load never touches the disk, and
the ETag lets `Cache-Control: no-cache` revalidate with a 304 instead of a new body.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass

from aiohttp import web

__all__ = ["CSP", "register"]

# Everything from our own origin; the socket may be ws: or wss: (behind TLS or not);
# no inline script or style, no framing, no plugins, forms only to ourselves.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token may be in the page's query string
    "X-Frame-Options": "DENY",
}
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
          ".svg": "image/svg+xml"}
_PAGES = {"/": "index.html", "/dashboard": "dashboard.html"}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    content_type: str
    etag: str

    def response(self, request: web.Request) -> web.Response:
        headers = {**_HEADERS, "ETag": self.etag}
        if self.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, content_type=self.content_type, charset="utf-8",
                            headers=headers)


def _load() -> dict[str, _Asset]:
    assets: dict[str, _Asset] = {}
    for entry in importlib.resources.files(__name__).iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            assets[entry.name] = _Asset(body, _TYPES[suffix], etag)
    return assets


def register(app: web.Application) -> None:
    assets = _load()

    async def page(request: web.Request) -> web.Response:
        return assets[_PAGES[request.path]].response(request)

    async def static(request: web.Request) -> web.Response:
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound(reason="no such file")
        return asset.response(request)

    for path in _PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/static/{name}", static)
