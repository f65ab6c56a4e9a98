"""server.protocol.requests: one typed request per envelope, or a HubError naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import BadRequest, TooLarge
from server.protocol import requests as rq

MAX_TEXT = 100


def parse(**frame: Any) -> rq.Request:
    return rq.parse_request(frame, max_text=MAX_TEXT)


def bad(match: str, **frame: Any) -> None:
    with pytest.raises(BadRequest, match=match):
        parse(**frame)


# ---- ids ------------------------------------------------------------------------------

@pytest.mark.parametrize("rid", [0, 1, -5, 2**63, "a", "x" * 64])
def test_valid_ids_are_kept(rid: Any) -> None:
    assert parse(t="ping", id=rid) == rq.Ping(rid)
    assert rq.request_id({"t": "ping", "id": rid}) == rid


def test_missing_id_is_none() -> None:
    assert parse(t="ping") == rq.Ping(None)
    assert rq.request_id({"t": "ping"}) is None


@pytest.mark.parametrize("rid", [True, False, "x" * 65, 1.5, None, [], {}])
def test_invalid_ids(rid: Any) -> None:
    assert rq.request_id({"t": "ping", "id": rid}) is None
    bad("'id'", t="ping", id=rid)


def test_unknown_type_is_bad_request_and_truncated() -> None:
    with pytest.raises(BadRequest, match="unknown frame type") as e:
        parse(t="z" * 500)
    assert len(e.value.message) < 100


# ---- each request type ------------------------------------------------------------------

def test_hello() -> None:
    long_token = "a" * 3000  # tokens are not capped at 64 like ids
    assert parse(t="hello", id=1, token=long_token) == rq.Hello(1, long_token)
    bad("'token'", t="hello", id=1)
    bad("'token'", t="hello", token="")
    bad("'token'", t="hello", token=5)


def test_join() -> None:
    assert parse(t="join", room="group:g") == rq.Join(None, "group:g", None, False)
    assert parse(t="join", id="j", room="group:g", since=0, create=True) == rq.Join(
        "j", "group:g", 0, True
    )
    bad("'create'", t="join", room="group:g", create="yes")
    bad("'create'", t="join", room="group:g", create=1)
    bad("'since'", t="join", room="group:g", since=-1)
    bad("'since'", t="join", room="group:g", since=True)
    bad("'since'", t="join", room="group:g", since=1.0)
    bad("'since'", t="join", room="group:g", since="3")


@pytest.mark.parametrize("t", ["join", "leave", "typing", "watch", "unwatch", "history"])
def test_room_is_a_non_empty_string_of_at_most_200(t: str) -> None:
    assert parse(t=t, room="r" * 200).room == "r" * 200  # type: ignore[union-attr]
    bad("'room'", t=t)
    bad("'room'", t=t, room="")
    bad("'room'", t=t, room=7)
    bad("'room'", t=t, room=None)
    bad("'room'", t=t, room="r" * 201)


def test_leave_typing_watch_unwatch_ping() -> None:
    assert parse(t="leave", id=2, room="dm:s") == rq.Leave(2, "dm:s")
    assert parse(t="typing", room="dm:s") == rq.Typing(None, "dm:s")
    assert parse(t="watch", room="collective:*") == rq.Watch(None, "collective:*")
    assert parse(t="unwatch", room="collective:*") == rq.Unwatch(None, "collective:*")
    assert parse(t="ping", id=9, extra="ignored") == rq.Ping(9)


def test_send_minimal_and_full() -> None:
    assert parse(t="send", room="dm:s", text="hi") == rq.Send(
        None, "dm:s", "hi", None, None, None, None
    )
    full = parse(t="send", id=1, room="dm:s", text="hi", cid="c1", reply_to=4, stream="s1",
                 meta={"a": [1]})
    assert full == rq.Send(1, "dm:s", "hi", "c1", 4, "s1", {"a": [1]})


def test_send_text() -> None:
    bad("'text'", t="send", room="dm:s")
    bad("'text'", t="send", room="dm:s", text=None)
    bad("'text'", t="send", room="dm:s", text=["hi"])
    bad("empty", t="send", room="dm:s", text="")
    assert parse(t="send", room="dm:s", text="x" * MAX_TEXT).text == "x" * MAX_TEXT  # type: ignore[union-attr]
    with pytest.raises(TooLarge, match=str(MAX_TEXT)):
        parse(t="send", room="dm:s", text="x" * (MAX_TEXT + 1))


def test_text_limit_counts_characters_not_bytes() -> None:
    assert parse(t="send", room="dm:s", text="é" * MAX_TEXT)


def test_send_cid() -> None:
    assert parse(t="send", room="dm:s", text="a", cid=42).cid == "42"  # type: ignore[union-attr]
    assert parse(t="send", room="dm:s", text="a", cid=None).cid is None  # type: ignore[union-attr]
    assert parse(t="send", room="dm:s", text="a", cid="c" * 64).cid == "c" * 64  # type: ignore[union-attr]
    bad("'cid'", t="send", room="dm:s", text="a", cid="c" * 65)
    bad("'cid'", t="send", room="dm:s", text="a", cid="")
    bad("'cid'", t="send", room="dm:s", text="a", cid=True)
    bad("'cid'", t="send", room="dm:s", text="a", cid=1.5)


@pytest.mark.parametrize("reply_to", [1, 2**40, "mid-1", "m" * 64])
def test_send_reply_to_valid(reply_to: Any) -> None:
    assert parse(t="send", room="dm:s", text="a", reply_to=reply_to).reply_to == reply_to  # type: ignore[union-attr]


@pytest.mark.parametrize("reply_to", [0, -1, True, "", "m" * 65, 1.0, [1], {"seq": 1}])
def test_send_reply_to_invalid(reply_to: Any) -> None:
    bad("'reply_to'", t="send", room="dm:s", text="a", reply_to=reply_to)


def test_send_meta_and_stream() -> None:
    bad("'meta'", t="send", room="dm:s", text="a", meta=[1])
    bad("'meta'", t="send", room="dm:s", text="a", meta="x")
    bad("'stream'", t="send", room="dm:s", text="a", stream="")
    bad("'stream'", t="send", room="dm:s", text="a", stream=3)
    bad("'room'", t="send", text="a")


def test_delta() -> None:
    assert parse(t="delta", room="dm:s", stream="s", text="") == rq.Delta(None, "dm:s", "s", "")
    bad("'stream'", t="delta", room="dm:s", text="x")
    bad("'text'", t="delta", room="dm:s", stream="s")
    with pytest.raises(TooLarge):
        parse(t="delta", room="dm:s", stream="s", text="x" * (MAX_TEXT + 1))


@pytest.mark.parametrize(
    ("given", "limit"), [(None, 50), (1, 1), (50, 50), (100, 100), (101, 100), (10**9, 100), (0, 1)]
)
def test_history_limit_default_and_clamp(given: int | None, limit: int) -> None:
    frame: dict[str, Any] = {"t": "history", "room": "dm:s"}
    if given is not None:
        frame["limit"] = given
    req = rq.parse_request(frame, max_text=MAX_TEXT)
    assert req == rq.History(None, "dm:s", None, limit)


def test_history_before_and_bad_values() -> None:
    assert parse(t="history", room="dm:s", before=10).before == 10  # type: ignore[union-attr]
    bad("'before'", t="history", room="dm:s", before=-1)
    bad("'before'", t="history", room="dm:s", before="10")
    bad("'limit'", t="history", room="dm:s", limit=-1)
    bad("'limit'", t="history", room="dm:s", limit=True)
    bad("'limit'", t="history", room="dm:s", limit=2.5)


def test_invite() -> None:
    assert parse(t="invite", id=3, room="group:g", persona="sam") == rq.Invite(3, "group:g", "sam")
    bad("'persona'", t="invite", room="group:g")
    bad("'persona'", t="invite", room="group:g", persona="p" * 65)


def test_parse_does_not_mutate_the_frame() -> None:
    frame = {"t": "send", "room": "dm:s", "text": "a", "cid": 7}
    rq.parse_request(frame, max_text=MAX_TEXT)
    assert frame == {"t": "send", "room": "dm:s", "text": "a", "cid": 7}
