"""docs/protocol.schema.json is a valid JSON Schema and accepts/rejects example frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from schema_util import validate_client_frame, validate_server_frame, validator_for

SCHEMA_PATH = Path(__file__).parent.parent / "docs" / "protocol.schema.json"

ALICE = {"id": "alice", "role": "human", "name": "Alice"}
SAM = {"id": "samantha", "role": "persona", "name": "Samantha"}
DM = "dm:samantha:alice"

MSG: dict[str, Any] = {
    "t": "msg",
    "room": DM,
    "seq": 7,
    "mid": "01J9Z3K6Q4",
    "from": SAM,
    "text": "Hello, Alice.",
    "ts": 1732540000000,
}

VALID_CLIENT: list[dict[str, Any]] = [
    {"t": "hello", "id": 1, "token": "eyJhbGciOiJIUzI1NiJ9.e30.sig"},
    {"t": "hello", "token": "x"},
    {"t": "join", "id": "j1", "room": "dm:samantha"},
    {"t": "join", "id": 2, "room": DM, "since": 0},
    {"t": "join", "room": "group:book-club", "create": True, "since": 41},
    {"t": "join", "room": "collective:all"},
    {"t": "leave", "id": 3, "room": "group:book-club"},
    {"t": "send", "id": 4, "room": "dm:samantha", "text": "hi"},
    {
        "t": "send",
        "room": DM,
        "text": "the final text of a streamed reply",
        "cid": "c-1",
        "reply_to": 6,
        "stream": "s1",
        "meta": {"lang": "en"},
    },
    {"t": "send", "room": "group:g", "text": "re", "reply_to": "01J9Z3K6Q4"},
    {"t": "delta", "room": DM, "stream": "s1", "text": "Hel"},
    {"t": "history", "id": 5, "room": DM},
    {"t": "history", "room": "collective:all", "before": 100, "limit": 500},
    {"t": "typing", "room": "dm:samantha"},
    {"t": "invite", "id": 6, "room": "group:book-club", "persona": "samantha"},
    {"t": "invite", "room": "collective:ethics", "persona": "atlas"},
    {"t": "watch", "id": 7, "room": "collective:*"},
    {"t": "watch", "room": "collective:all"},
    {"t": "unwatch", "room": "collective:*"},
    {"t": "ping"},
    {"t": "status", "id": 3, "conversations": 12, "mind": "reflex"},
    {"t": "inbox", "id": 4, "limit": 1000},
    {"t": "ping", "id": "p" * 64, "extra": "fields are allowed"},
]

INVALID_CLIENT: list[dict[str, Any]] = [
    {},
    {"t": 1},
    {"t": "nope"},
    {"t": "hello"},  # no token
    {"t": "hello", "token": 42},
    {"t": "ping", "id": "p" * 65},  # id too long
    {"t": "ping", "id": 1.5},
    {"t": "send", "room": "dm:samantha", "text": ""},  # an empty message is refused
    {"t": "join"},
    {"t": "join", "room": "lobby"},  # no kind
    {"t": "join", "room": "group:a:b"},
    {"t": "join", "room": "dm:-bad"},
    {"t": "join", "room": "group:g", "since": -1},
    {"t": "join", "room": "group:g", "create": "yes"},
    {"t": "send", "room": "group:g"},  # no text
    {"t": "send", "room": "group:g", "text": "x", "cid": "c" * 65},
    {"t": "send", "room": "group:g", "text": "x", "reply_to": 0},
    {"t": "send", "room": "group:g", "text": "x", "meta": []},
    {"t": "delta", "room": "dm:samantha", "stream": "s", "text": "x"},  # short dm form
    {"t": "delta", "room": DM, "text": "x"},  # no stream
    {"t": "history", "room": DM, "limit": "10"},
    {"t": "typing"},
    {"t": "invite", "room": DM, "persona": "samantha"},
    {"t": "invite", "room": "group:g"},
    {"t": "watch", "room": "group:g"},
    {"t": "unwatch", "room": "collective:"},
    {"t": "inbox", "limit": "all"},
]

VALID_SERVER: list[dict[str, Any]] = [
    {
        "t": "welcome",
        "re": 1,
        "session": "s-1",
        "me": ALICE,
        "server": {
            "version": "0.1.0",
            "node": "n1",
            "max_frame": 65536,
            "max_text": 16384,
            "protocol": 1,
            "history": 1000,
            "rate": {"per_s": 20, "burst": 40},
        },
    },
    {
        "t": "welcome",
        "session": "s-2",
        "me": SAM,  # header auth: no `re`
        "server": {
            "version": "0.1.0",
            "node": "n1",
            "max_frame": 65536,
            "max_text": 16384,
            "protocol": 1,
            "history": 1000,
            "rate": {"per_s": 2.5, "burst": 5},
        },
    },
    {
        "t": "joined",
        "re": "j1",
        "room": DM,
        "seq": 7,
        "members": ["samantha", "alice"],
        "replayed": 2,
        "gap": False,
    },
    {"t": "joined", "room": "group:new", "seq": 0, "members": [], "replayed": 0, "gap": True},
    {"t": "left", "re": 3, "room": "group:book-club"},
    {"t": "ack", "re": 4, "room": DM, "seq": 8, "mid": "01J9Z3K6Q5"},
    {"t": "history", "re": 5, "room": DM, "msgs": [MSG]},
    {"t": "history", "room": "collective:all", "msgs": []},
    MSG,
    {**MSG, "cid": "c-1", "reply_to": 6, "stream": "s1", "meta": {"k": [1, 2]}},
    {**MSG, "reply_to": "01J9Z3K6Q4", "room": "collective:all"},
    {"t": "delta", "room": DM, "stream": "s1", "from": SAM, "text": "Hel"},
    {"t": "presence", "room": "group:g", "joined": ["alice"], "left": []},
    {"t": "typing", "room": DM, "from": ALICE},
    {"t": "error", "re": 9, "code": "forbidden", "message": "not a member"},
    {"t": "error", "code": "bad_request", "message": "frame is not a map"},
    {"t": "ok", "re": 6, "room": "group:book-club", "persona": "samantha"},
    {"t": "watching", "re": 7, "room": "collective:*"},
    {"t": "unwatched", "room": "collective:ethics"},
    {"t": "pong", "re": "p"},
    {"t": "pong"},
    {"t": "inbox", "re": 4, "rooms": [{"room": DM, "seq": 7, "ts": 1700000000000}]},
    {"t": "inbox", "rooms": []},
    {"t": "invited", "room": "group:book-club", "by": ALICE},
]

INVALID_SERVER: list[dict[str, Any]] = [
    {
        "t": "welcome",
        "re": 1,
        "session": "s",
        "me": ALICE,
        "server": {"version": "0.1.0", "node": "n1", "max_frame": 65536, "max_text": 16384},
    },
    {
        "t": "welcome",
        "session": "s",
        "me": {"id": "alice", "role": "god", "name": "A"},
        "server": {
            "version": "0.1.0",
            "node": "n1",
            "max_frame": 65536,
            "max_text": 16384,
            "protocol": 1,
            "history": 1000,
            "rate": {"per_s": 1, "burst": 1},
        },
    },
    {"t": "joined", "room": DM, "seq": 1, "members": ["alice"], "replayed": 0},  # no gap
    {"t": "joined", "room": "dm:samantha", "seq": 1, "members": [], "replayed": 0, "gap": False},
    {"t": "joined", "room": DM, "seq": 1, "members": "alice", "replayed": 0, "gap": False},
    {"t": "ack", "room": DM, "seq": "8", "mid": "m"},
    {"t": "ack", "room": DM, "seq": 0, "mid": "m"},
    {"t": "history", "room": DM},  # request shape is not a reply
    {"t": "history", "room": DM, "msgs": [{**MSG, "ts": "now"}]},
    {k: v for k, v in MSG.items() if k != "mid"},
    {**MSG, "from": "samantha"},
    {**MSG, "from": {"id": "samantha", "role": "persona"}},
    {"t": "delta", "room": DM, "stream": "s1", "text": "x"},  # no from
    {"t": "presence", "room": "group:g", "joined": ["alice"]},
    {"t": "typing", "room": DM, "from": "alice"},
    {"t": "error", "code": "oops", "message": "x"},
    {"t": "error", "code": "internal"},
    {"t": "ok", "re": 6, "room": "dm:samantha:alice"},  # ok names group/collective rooms only
    {"t": "watching", "room": "group:g"},
    {"t": "invited", "room": "group:g"},
    {"t": "pong", "re": None},
    {"t": "hello", "token": "x"},  # a client frame is not a server frame
]


def _label(frame: dict[str, Any]) -> str:
    return str(frame.get("t", "?"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _ts(schema: dict[str, Any], entry: str) -> set[str]:
    defs = schema["$defs"]
    return {
        defs[r["$ref"].rsplit("/", 1)[-1]]["properties"]["t"]["const"] for r in defs[entry]["oneOf"]
    }


def test_entry_points_cover_every_frame_type(schema: dict[str, Any]) -> None:
    assert _ts(schema, "client_frame") == {
        "hello",
        "join",
        "leave",
        "send",
        "delta",
        "history",
        "typing",
        "invite",
        "watch",
        "unwatch",
        "ping",
        "status",
        "inbox",
    }
    assert _ts(schema, "server_frame") == {
        "welcome",
        "joined",
        "left",
        "ack",
        "history",
        "msg",
        "delta",
        "presence",
        "typing",
        "error",
        "ok",
        "watching",
        "unwatched",
        "pong",
        "invited",
        "inbox",
    }


def test_examples_cover_every_frame_type(schema: dict[str, Any]) -> None:
    assert {f["t"] for f in VALID_CLIENT} == _ts(schema, "client_frame")
    assert {f["t"] for f in VALID_SERVER} == _ts(schema, "server_frame")


@pytest.mark.parametrize("frame", VALID_CLIENT, ids=_label)
def test_valid_client_frames(frame: dict[str, Any]) -> None:
    validate_client_frame(frame)


@pytest.mark.parametrize("frame", INVALID_CLIENT, ids=_label)
def test_invalid_client_frames(frame: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_client_frame(frame)


@pytest.mark.parametrize("frame", VALID_SERVER, ids=_label)
def test_valid_server_frames(frame: dict[str, Any]) -> None:
    validate_server_frame(frame)


@pytest.mark.parametrize("frame", INVALID_SERVER, ids=_label)
def test_invalid_server_frames(frame: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_server_frame(frame)


def test_error_names_the_offending_field() -> None:
    with pytest.raises(ValidationError) as info:
        validate_server_frame({**MSG, "seq": "seven"})
    assert list(info.value.absolute_path) == ["seq"]


# -- the collective's meta conventions (not enforced by the hub; see docs/protocol.md) ------------
TURN_META = {"thread": "t-1", "kind": "ask", "turn": 1, "max_turns": 6, "topic": "chess", "to": ["atlas"]}
NOTE_META: list[dict[str, Any]] = [
    {"kind": "guard", "guard": "echo", "thread": "t-1", "turns": 3, "max_turns": 6},
    {"kind": "guard", "guard": "max_turns", "thread": "t-1", "turns": 6, "max_turns": 6},
    {"kind": "guard", "guard": "max_duration", "thread": "t-1", "turns": 3, "max_turns": 6,
     "max_duration": 45.0},
    {"kind": "guard", "guard": "budget", "thread": "t-1", "turns": 2, "max_turns": 6, "used": 20, "limit": 20,
     "window": 60.0, "chatter": False},
]
BAD_NOTE_META: list[dict[str, Any]] = [
    {"kind": "guard", "guard": "budget", "thread": "t-1", "turns": 2, "max_turns": 6},  # no budget numbers
    {"kind": "guard", "guard": "max_duration", "thread": "t-1", "turns": 3, "max_turns": 6},
    {"kind": "answer", "guard": "echo", "thread": "t-1", "turns": 1, "max_turns": 6},
    {"kind": "guard", "guard": "echo", "thread": "t-1", "turns": -1, "max_turns": 6},
    {"kind": "guard", "guard": "echo", "turns": 1, "max_turns": 6},  # no thread
]


def test_collective_meta_conventions() -> None:
    validator_for("collective_meta").validate(TURN_META)
    validate_server_frame({**MSG, "room": "collective:chess", "meta": TURN_META})
    for meta in NOTE_META:
        validator_for("guard_note_meta").validate(meta)
        validate_server_frame({**MSG, "room": "collective:all", "meta": meta})
    for meta in BAD_NOTE_META:
        with pytest.raises(ValidationError):
            validator_for("guard_note_meta").validate(meta)
    with pytest.raises(ValidationError):
        validator_for("collective_meta").validate({"kind": "ask"})  # a turn names its thread
