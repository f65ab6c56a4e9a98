"""Sans-I/O parts of the client SDK: codec, close-code policy, backoff, resume/dedupe."""

from __future__ import annotations

import random

import msgpack
import orjson
import pytest

from clients.errors import (
    ConnectionClosedError,
    ConnectionLostError,
    OS1Error,
    RequestError,
    RequestTimeoutError,
)
from clients.resume import ResumeState
from clients.wire import (
    SUBPROTOCOLS,
    CloseCode,
    Codec,
    DecodeError,
    backoff_delays,
    is_reconnectable,
)


def msg(room: str, seq: int) -> dict[str, object]:
    return {"t": "msg", "room": room, "seq": seq, "text": f"m{seq}"}


# -- codec --------------------------------------------------------------------------
def test_subprotocol_names_are_the_contract() -> None:
    assert Codec("json").subprotocol == "os1.v1.json"
    assert Codec("msgpack").subprotocol == "os1.v1.msgpack"
    assert set(SUBPROTOCOLS) == {"json", "msgpack"}


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        Codec("xml")  # type: ignore[arg-type]


def test_json_encodes_text_frames() -> None:
    data = Codec("json").encode({"t": "ping", "id": 1, "text": "é…"})
    assert isinstance(data, str)
    assert orjson.loads(data) == {"t": "ping", "id": 1, "text": "é…"}


def test_msgpack_encodes_binary_maps() -> None:
    data = Codec("msgpack").encode({"t": "ping", "id": 1})
    assert isinstance(data, bytes)
    assert msgpack.unpackb(data, raw=False) == {"t": "ping", "id": 1}


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_decode_goes_by_frame_type_not_by_negotiation(fmt: str) -> None:
    frame = {"t": "msg", "room": "group:x", "seq": 3, "meta": {"k": [1, 2]}}
    codec = Codec(fmt)  # type: ignore[arg-type]
    assert codec.decode(orjson.dumps(frame).decode()) == frame
    assert codec.decode(msgpack.packb(frame)) == frame


@pytest.mark.parametrize(
    "data", ["not json", "[1, 2]", '{"x": 1}', '{"t": 5}', b"\xc1", msgpack.packb([1])]
)
def test_decode_rejects_what_is_not_an_envelope(data: str | bytes) -> None:
    with pytest.raises(DecodeError):
        Codec.decode(data)


def test_size_counts_utf8_bytes() -> None:
    assert Codec.size("é") == 2
    assert Codec.size(b"abc") == 3


# -- close codes and backoff ----------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "resumable"),
    [(None, True), (1000, True), (1001, True), (1006, True), (1011, True), (4008, True),
     (4029, True), (4001, False), (4003, False)],
)
def test_which_closes_are_resumed(code: int | None, resumable: bool) -> None:
    assert is_reconnectable(code) is resumable


def test_close_codes_enum() -> None:
    assert (int(CloseCode.UNAUTHORIZED), int(CloseCode.FORBIDDEN)) == (4001, 4003)
    assert int(CloseCode.GOING_AWAY) == 1001


def test_backoff_grows_with_jitter_and_stays_in_bounds() -> None:
    delays = backoff_delays(0.05, 5.0, random.Random(7))
    seq = [next(delays) for _ in range(30)]
    assert seq[0] == pytest.approx(0.05)
    assert all(0.05 <= d <= 5.0 for d in seq)
    assert max(seq[-10:]) > 2.5  # reached the ceiling region
    assert len({round(d, 6) for d in seq[-10:]}) > 1  # jittered, not lockstep


def test_backoff_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        next(backoff_delays(0, 1))
    with pytest.raises(ValueError):
        next(backoff_delays(2, 1))


# -- errors -----------------------------------------------------------------------
def test_exception_tree() -> None:
    err = RequestError({"t": "error", "re": 3, "code": "forbidden", "message": "no"})
    assert (err.code, err.message, err.frame["re"]) == ("forbidden", "no", 3)
    assert isinstance(err, OS1Error)
    assert issubclass(RequestTimeoutError, TimeoutError) and issubclass(RequestTimeoutError, OS1Error)
    lost = ConnectionLostError(1006, "gone")
    assert isinstance(lost, ConnectionClosedError) and lost.code == 1006


# -- resume state / dedupe ----------------------------------------------------------
def test_dedupe_drops_seen_and_older_but_lets_jumps_through() -> None:
    state = ResumeState()
    assert [state.accept_msg(msg("group:a", s)) for s in (1, 2, 2, 1, 5, 4, 6)] == [
        True, True, False, False, True, False, True]
    assert state.last_seq == {"group:a": 6}


def test_dedupe_is_per_room_and_ignores_frames_without_seq() -> None:
    state = ResumeState()
    assert state.accept_msg(msg("group:a", 3))
    assert state.accept_msg(msg("group:b", 1))
    assert state.accept_msg({"t": "msg", "room": "group:a"})
    assert state.last_seq == {"group:a": 3, "group:b": 1}


def test_join_without_since_resumes_from_the_latest_seq_at_join() -> None:
    state = ResumeState()
    state.on_joined("dm:sam", {"room": "dm:sam:alice", "seq": 41}, None, resume=False)
    assert state.full_name("dm:sam") == "dm:sam:alice"
    assert state.resume_frames() == [{"t": "join", "room": "dm:sam:alice", "since": 41}]
    state.accept_msg(msg("dm:sam:alice", 42))
    assert state.resume_frames()[0]["since"] == 42


def test_join_with_since_resumes_from_since_until_a_msg_is_seen() -> None:
    state = ResumeState()
    state.on_joined("group:g", {"room": "group:g", "seq": 10}, 0, resume=False)
    assert state.resume_frames()[0]["since"] == 0
    state.accept_msg(msg("group:g", 4))
    assert state.resume_frames()[0]["since"] == 4


def test_explicit_earlier_since_reopens_dedupe_for_the_replay() -> None:
    state = ResumeState()
    state.on_joined("group:g", {"room": "group:g", "seq": 0}, None, resume=False)
    for s in (1, 2, 3):
        state.accept_msg(msg("group:g", s))
    state.on_joined("group:g", {"room": "group:g", "seq": 3}, 1, resume=False)
    assert state.accept_msg(msg("group:g", 2)) and state.accept_msg(msg("group:g", 3))


def test_resume_join_keeps_the_cursor() -> None:
    state = ResumeState()
    state.on_joined("group:g", {"room": "group:g", "seq": 5}, None, resume=False)
    state.accept_msg(msg("group:g", 7))
    state.on_joined("group:g", {"room": "group:g", "seq": 9}, 7, resume=True)
    assert state.last_seq["group:g"] == 7
    assert not state.accept_msg(msg("group:g", 7)) and state.accept_msg(msg("group:g", 8))


def test_leave_and_watch_bookkeeping() -> None:
    state = ResumeState()
    state.on_joined("dm:sam", {"room": "dm:sam:alice", "seq": 0}, None, resume=False)
    state.on_watching("collective:*", {"room": "collective:*"})
    assert [f["t"] for f in state.resume_frames()] == ["join", "watch"]
    state.on_left("dm:sam", {"room": "dm:sam:alice"})
    assert state.resume_frames() == [{"t": "watch", "room": "collective:*"}]


def test_resume_after_a_hub_reset_restarts_dedupe() -> None:
    state = ResumeState()
    state.on_joined("group:g", {"room": "group:g", "seq": 0}, None, resume=False)
    for s in (1, 2, 3):
        state.accept_msg(msg("group:g", s))
    [frame] = state.resume_frames()
    state.resume_hook(frame)({"room": "group:g", "seq": 0})  # the hub lost its log
    assert state.last_seq["group:g"] == 0
    assert state.accept_msg(msg("group:g", 1))  # a new message, not a duplicate
    assert state.resume_frames()[0]["since"] == 1


def test_rooms_seen_without_a_join_are_rejoined_from_their_last_seq() -> None:
    state = ResumeState()
    state.accept_msg(msg("dm:sam:alice", 4))  # a persona's inbox
    assert state.resume_frames() == [{"t": "join", "room": "dm:sam:alice", "since": 4}]
    [frame] = state.resume_frames()
    state.resume_hook(frame)({"room": "dm:sam:alice", "seq": 6})
    assert state.since_for("dm:sam:alice") == 4 and "dm:sam:alice" in state.joined


def test_watched_rooms_are_rewatched_and_forget_their_dedupe_state() -> None:
    state = ResumeState()
    state.on_watching("collective:*", {"room": "collective:*"})
    state.accept_msg(msg("collective:ops", 9))
    assert state.resume_frames() == [{"t": "watch", "room": "collective:*"}]
    assert "collective:ops" not in state.last_seq  # no replay, so no duplicate to guard


def test_forget_drops_every_trace() -> None:
    state = ResumeState()
    state.on_joined("group:g", {"room": "group:g", "seq": 2}, None, resume=False)
    state.accept_msg(msg("group:g", 3))
    state.forget("group:g")
    assert state.resume_frames() == [] and state.last_seq == {}


@pytest.mark.parametrize("kw", [{"max_events": 0}, {"request_timeout": 0}])
def test_client_refuses_unbounded_or_zero_settings(kw: dict[str, float]) -> None:
    from clients.sdk import Client

    with pytest.raises(ValueError):
        Client("ws://127.0.0.1:1/ws", "t", **kw)  # type: ignore[arg-type]


def test_a_new_store_epoch_resets_the_seqs_seen() -> None:
    from clients.resume import ResumeState

    state = ResumeState()
    assert state.on_epoch("a") is False
    state.on_joined("dm:s", {"room": "dm:s:al", "seq": 0}, 0, resume=False)
    assert state.accept_msg({"room": "dm:s:al", "seq": 7})
    assert state.on_epoch("a") is False
    assert not state.accept_msg({"room": "dm:s:al", "seq": 3})
    assert state.on_epoch("b") is True
    assert state.accept_msg({"room": "dm:s:al", "seq": 1})
    assert state.since_for("dm:s:al") == 1
