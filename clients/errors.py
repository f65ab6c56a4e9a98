"""Exceptions raised by the OS1 client SDK.

Tree::

    OS1Error                      root: anything the SDK raises on purpose
    ├── RequestError              the hub answered a request with an ``error`` frame
    ├── RequestTimeoutError       no reply within ``request_timeout`` (also a TimeoutError)
    └── ConnectionClosedError     the connection is closed for good (4001/4003, close(),
        │                         or any loss with reconnect disabled)
        └── ConnectionLostError   a request that is unsafe to repeat was in flight when
                                  the connection dropped (the client itself reconnects)
"""

from __future__ import annotations

from typing import Any


class OS1Error(Exception):
    """Root of every error the SDK raises on purpose."""


class RequestError(OS1Error):
    """An ``error`` frame that answers a request (it carries ``re``)."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame
        self.code: str = str(frame.get("code", "internal"))
        self.message: str = str(frame.get("message", ""))
        super().__init__(f"{self.code}: {self.message}" if self.message else self.code)


class RequestTimeoutError(OS1Error, TimeoutError):
    """No reply arrived within ``request_timeout`` seconds (reconnects included)."""


class ConnectionClosedError(OS1Error):
    """The connection is closed and will not be resumed."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed (code={code}): {reason}" if reason
                         else f"connection closed (code={code})")


class ConnectionLostError(ConnectionClosedError):
    """The connection dropped while a request that is unsafe to repeat was in flight."""
