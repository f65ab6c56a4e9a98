"""Client requests as a tagged union of dataclasses, and their validation. Pure.

`parse_request` turns a decoded envelope into one typed request or raises a HubError
(BadRequest / TooLarge) whose message says which field is wrong and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.errors import BadRequest, TooLarge

MAX_ID_LEN = 64
HISTORY_DEFAULT = 50
HISTORY_MAX = 100
INBOX_DEFAULT = 100
INBOX_MAX = 1000
META_DEPTH = 16

RequestId = str | int | None


@dataclass(slots=True)
class Hello:
    id: RequestId
    token: str


@dataclass(slots=True)
class Join:
    id: RequestId
    room: str
    since: int | None
    create: bool


@dataclass(slots=True)
class Leave:
    id: RequestId
    room: str


@dataclass(slots=True)
class Send:
    id: RequestId
    room: str
    text: str
    cid: str | None
    reply_to: int | str | None
    stream: str | None
    meta: dict[str, Any] | None


@dataclass(slots=True)
class Delta:
    id: RequestId
    room: str
    stream: str
    text: str


@dataclass(slots=True)
class History:
    id: RequestId
    room: str
    before: int | None
    limit: int


@dataclass(slots=True)
class Typing:
    id: RequestId
    room: str


@dataclass(slots=True)
class Invite:
    id: RequestId
    room: str
    persona: str


@dataclass(slots=True)
class Watch:
    id: RequestId
    room: str


@dataclass(slots=True)
class Unwatch:
    id: RequestId
    room: str


@dataclass(slots=True)
class Ping:
    id: RequestId


@dataclass(slots=True)
class Status:
    """A persona's self-report (OS1 addition): shown by GET /api/personas and the dashboard."""

    id: RequestId
    conversations: int
    mind: str | None


@dataclass(slots=True)
class Inbox:
    """The caller's dm rooms, most recently active first (an addition to protocol v1)."""

    id: RequestId
    limit: int


Request = (
    Hello | Join | Leave | Send | Delta | History | Typing | Invite | Watch | Unwatch | Ping | Status
    | Inbox
)


def request_id(frame: dict[str, Any]) -> RequestId:
    """The frame's `id` if it is a valid one, else None (then replies carry no `re`)."""
    rid = frame.get("id")
    if isinstance(rid, bool):
        return None
    if isinstance(rid, int) or (isinstance(rid, str) and len(rid) <= MAX_ID_LEN):
        return rid
    return None


def _str(frame: dict[str, Any], key: str, *, max_len: int | None = MAX_ID_LEN) -> str:
    v = frame.get(key)
    if not isinstance(v, str) or not v:
        raise BadRequest(f"'{key}' must be a non-empty string")
    if max_len is not None and len(v) > max_len:
        raise BadRequest(f"'{key}' is longer than {max_len} characters")
    return v


def _opt_str(frame: dict[str, Any], key: str) -> str | None:
    return None if frame.get(key) is None else _str(frame, key)


def _opt_int(frame: dict[str, Any], key: str, *, minimum: int = 0) -> int | None:
    v = frame.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BadRequest(f"'{key}' must be an integer >= {minimum}")
    return v


def _text(frame: dict[str, Any], max_text: int) -> str:
    v = frame.get("text")
    if not isinstance(v, str):
        raise BadRequest("'text' must be a string")
    if len(v) > max_text:
        raise TooLarge(f"text is {len(v)} characters; the limit is {max_text}")
    return v


def _check_id(frame: dict[str, Any]) -> RequestId:
    if "id" in frame and request_id(frame) is None:
        raise BadRequest("'id' must be an integer or a string of at most 64 characters")
    return request_id(frame)


def _send(frame: dict[str, Any], rid: RequestId, max_text: int) -> Send:
    text = _text(frame, max_text)
    if not text:
        raise BadRequest("'text' must not be empty")
    reply_to = frame.get("reply_to")
    if reply_to is not None and not (
        (isinstance(reply_to, int) and not isinstance(reply_to, bool) and reply_to > 0)
        or (isinstance(reply_to, str) and 0 < len(reply_to) <= MAX_ID_LEN)
    ):
        raise BadRequest("'reply_to' must be a message seq (integer) or mid (string)")
    meta = frame.get("meta")
    if meta is not None and not (isinstance(meta, dict) and _plain(meta, META_DEPTH)):
        raise BadRequest(
            f"'meta' must be a map of plain JSON values (string keys, at most {META_DEPTH} levels)"
        )
    cid = frame.get("cid")
    if isinstance(cid, int) and not isinstance(cid, bool):
        cid = str(cid)
        frame = {**frame, "cid": cid}
    return Send(
        rid, _str(frame, "room", max_len=200), text, _opt_str(frame, "cid"), reply_to,
        _opt_str(frame, "stream"), meta,
    )


def _plain(value: object, depth: int) -> bool:
    """JSON-representable in both wire formats: stored messages must encode for every reader."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if depth <= 0:
        return False
    if isinstance(value, list):
        return all(_plain(v, depth - 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth - 1) for k, v in value.items())
    return False


def _history(frame: dict[str, Any], rid: RequestId) -> History:
    limit = _opt_int(frame, "limit", minimum=0)
    limit = HISTORY_DEFAULT if limit is None else max(1, min(limit, HISTORY_MAX))
    return History(rid, _str(frame, "room", max_len=200), _opt_int(frame, "before"), limit)


def parse_request(frame: dict[str, Any], *, max_text: int) -> Request:
    rid = _check_id(frame)
    t = frame["t"]

    def room() -> str:
        return _str(frame, "room", max_len=200)

    match t:
        case "hello":
            return Hello(rid, _str(frame, "token", max_len=None))
        case "join":
            create = frame.get("create", False)
            if not isinstance(create, bool):
                raise BadRequest("'create' must be true or false")
            return Join(rid, room(), _opt_int(frame, "since"), create)
        case "leave":
            return Leave(rid, room())
        case "send":
            return _send(frame, rid, max_text)
        case "delta":
            return Delta(rid, room(), _str(frame, "stream"), _text(frame, max_text))
        case "history":
            return _history(frame, rid)
        case "typing":
            return Typing(rid, room())
        case "invite":
            return Invite(rid, room(), _str(frame, "persona"))
        case "watch":
            return Watch(rid, room())
        case "unwatch":
            return Unwatch(rid, room())
        case "ping":
            return Ping(rid)
        case "inbox":
            limit = _opt_int(frame, "limit", minimum=0)
            return Inbox(rid, INBOX_DEFAULT if limit is None else max(1, min(limit, INBOX_MAX)))
        case "status":
            conversations = _opt_int(frame, "conversations")
            return Status(rid, conversations or 0, _opt_str(frame, "mind"))
    raise BadRequest(f"unknown frame type {str(t)[:40]!r}")

