"""Errors the hub reports to clients, and the WebSocket close codes it uses.

Exception tree::

    HubError                      (root: carries an ErrorCode sent in an `error` frame)
     +-- BadRequest               bad_request: malformed frame or field
     +-- Unauthorized             unauthorized: missing/forged/expired token
     +-- Forbidden                forbidden: role may not do this in this room
     +-- NotFound                 not_found: the room does not exist
     +-- TooLarge                 too_large: text above max_text
     +-- RateLimited              rate_limited: token bucket empty
     +-- Conflict                 conflict: a cid reused with other content
     +-- Unavailable              unavailable: the engine cannot store right now
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # node draining: reconnect, to another node if there is one
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4001
    FORBIDDEN = 4003
    TOO_SLOW = 4008
    RATE_LIMITED = 4029


class HubError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, rid: int | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rid = rid  # the request id, when it was read before the frame was refused


class BadRequest(HubError):
    code = ErrorCode.BAD_REQUEST


class Unauthorized(HubError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(HubError):
    code = ErrorCode.FORBIDDEN


class NotFound(HubError):
    code = ErrorCode.NOT_FOUND


class TooLarge(HubError):
    code = ErrorCode.TOO_LARGE


class RateLimited(HubError):
    code = ErrorCode.RATE_LIMITED


class Conflict(HubError):
    code = ErrorCode.CONFLICT


class Unavailable(HubError):
    code = ErrorCode.UNAVAILABLE
