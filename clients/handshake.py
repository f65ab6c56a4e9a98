"""Opening one authenticated hub connection: upgrade, then hello/welcome.

Kept apart from :mod:`clients.connection` (which decides *when* to open and what to do
after) so the two read separately.
"""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from clients.errors import RequestError
from clients.wire import FATAL_CLOSE_CODES, CloseCode, Codec, DecodeError, Frame

log = logging.getLogger("os1.client")

MAX_INBOUND_FRAME = 16 * 2**20  # hub frames may exceed max_frame: a full history page fits
HELLO_ID = 0  # ids of ordinary requests start at 1


async def open_session(
    url: str, token: str, codec: Codec, header_auth: bool, limit: float
) -> tuple[ClientConnection, Frame]:
    """Connect and authenticate within ``limit`` seconds per step; returns the socket
    and the ``welcome`` frame.

    Credentials refused (an ``error`` frame, or HTTP 401/403 at the upgrade) raise
    :class:`RequestError`; network trouble raises ``OSError``/``WebSocketException``/
    ``TimeoutError``, which the caller may retry.
    """
    headers = {"Authorization": f"Bearer {token}"} if header_auth else None
    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(codec.subprotocol)],
            additional_headers=headers,
            max_size=MAX_INBOUND_FRAME,
            open_timeout=limit,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            code = "unauthorized" if status == 401 else "forbidden"
            raise RequestError(
                {"t": "error", "code": code, "message": f"HTTP {status} at upgrade"}
            ) from exc
        raise
    try:
        welcome = await asyncio.wait_for(_greet(ws, token, codec, header_auth), limit)
    except BaseException:
        await ws.close()
        raise
    return ws, welcome


async def _greet(ws: ClientConnection, token: str, codec: Codec, header_auth: bool) -> Frame:
    if not header_auth:  # with the header the hub sends welcome (without re) at once
        await ws.send(codec.encode({"t": "hello", "id": HELLO_ID, "token": token}))
    while True:
        try:
            frame = Codec.decode(await ws.recv())
        except DecodeError:
            continue
        except ConnectionClosed as exc:
            if ws.close_code in FATAL_CLOSE_CODES:  # refused, error frame or not
                code = "forbidden" if ws.close_code == CloseCode.FORBIDDEN else "unauthorized"
                raise RequestError(
                    {"t": "error", "code": code, "message": ws.close_reason or code}
                ) from exc
            raise
        if frame["t"] == "welcome":
            return frame
        if frame["t"] == "error":
            raise RequestError(frame)
        log.debug("ignoring %r before welcome", frame["t"])
