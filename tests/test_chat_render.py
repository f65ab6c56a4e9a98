"""What `os1 chat` prints for each event: pure renderer, no socket."""

from __future__ import annotations

from typing import Any

import pytest

from clients.chat import build_parser, main
from clients.render import CLEAR_LINE, ChatRenderer

SAM = {"id": "samantha", "role": "persona", "name": "Samantha"}
ALICE = {"id": "alice", "role": "human", "name": "Alice"}
ROOM = "dm:samantha:alice"


def delta(text: str, stream: str = "s1", who: dict[str, str] = SAM) -> dict[str, Any]:
    return {"t": "delta", "room": ROOM, "stream": stream, "from": who, "text": text}


def msg(text: str, *, stream: str | None = None, who: dict[str, str] = SAM,
        cid: str | None = None, seq: int = 1) -> dict[str, Any]:
    frame: dict[str, Any] = {"t": "msg", "room": ROOM, "seq": seq, "from": who, "text": text}
    if stream is not None:
        frame["stream"] = stream
    if cid is not None:
        frame["cid"] = cid
    return frame


def play(r: ChatRenderer, *events: dict[str, Any]) -> str:
    return "".join(r.render(e) for e in events)


@pytest.fixture
def pipe() -> ChatRenderer:
    return ChatRenderer(me="alice", tty=False)


def test_plain_message_prints_whole_with_name(pipe: ChatRenderer) -> None:
    assert pipe.render(msg("Hello.")) == "Samantha: Hello.\n"


def test_name_falls_back_to_id(pipe: ChatRenderer) -> None:
    assert pipe.render(msg("x", who={"id": "samantha"})) == "samantha: x\n"


def test_stream_prints_chunks_then_final_msg_only_finishes_the_line(pipe: ChatRenderer) -> None:
    out = play(pipe, delta("Hel"), delta("lo, "), delta("Alice."), msg("Hello, Alice.", stream="s1"))
    assert out == "Samantha: Hello, Alice.\n"
    assert not pipe.streaming


def test_final_msg_adds_a_missing_tail(pipe: ChatRenderer) -> None:
    out = play(pipe, delta("Hel"), msg("Hello there", stream="s1"))
    assert out == "Samantha: Hello there\n"


def test_final_msg_that_disagrees_with_the_deltas_is_reprinted(pipe: ChatRenderer) -> None:
    out = play(pipe, delta("Hxx"), msg("Hello", stream="s1"))
    assert out == "Samantha: Hxx\nSamantha: Hello\n"


def test_stream_without_deltas_prints_whole(pipe: ChatRenderer) -> None:
    assert pipe.render(msg("replayed", stream="old")) == "Samantha: replayed\n"


def test_other_message_during_a_stream_keeps_lines_apart(pipe: ChatRenderer) -> None:
    bob = {"id": "bob", "role": "human", "name": "Bob"}
    out = play(pipe, delta("Hi"), msg("yo", who=bob), msg("Hi all", stream="s1"))
    assert out == "Samantha: Hi\nBob: yo\nSamantha: Hi all\n"


def test_a_second_stream_starts_on_its_own_line(pipe: ChatRenderer) -> None:
    out = play(pipe, delta("A"), delta("B", stream="s2"), msg("B!", stream="s2"))
    assert out == "Samantha: A\nSamantha: B!\n"


def test_own_message_just_typed_is_not_echoed(pipe: ChatRenderer) -> None:
    pipe.note_sent("c1")
    assert pipe.render(msg("hi", who=ALICE, cid="c1")) == ""


def test_own_message_from_history_or_elsewhere_shows_as_you(pipe: ChatRenderer) -> None:
    assert pipe.render(msg("earlier", who=ALICE, cid="other")) == "You: earlier\n"


def test_echo_own_for_pipes() -> None:
    r = ChatRenderer(me="alice", tty=False, echo_own=True)
    r.note_sent("c1")
    assert r.render(msg("hi", who=ALICE, cid="c1")) == "You: hi\n"


def test_typing_is_silent_without_a_tty(pipe: ChatRenderer) -> None:
    assert pipe.render({"t": "typing", "room": ROOM, "from": SAM}) == ""


def test_typing_on_a_tty_is_transient_and_cleared_by_the_next_output() -> None:
    r = ChatRenderer(me="alice", tty=True)
    shown = r.render({"t": "typing", "room": ROOM, "from": SAM})
    assert "Samantha is typing…" in shown and not shown.endswith("\n")
    assert r.render(delta("Hi")) == CLEAR_LINE + "Samantha: Hi"
    assert r.render(msg("Hi", stream="s1")) == "\n"


def test_own_typing_and_typing_mid_stream_are_ignored() -> None:
    r = ChatRenderer(me="alice", tty=True)
    assert r.render({"t": "typing", "room": ROOM, "from": ALICE}) == ""
    r.render(delta("x"))
    assert r.render({"t": "typing", "room": ROOM, "from": SAM}) == ""


def test_reconnect_notices(pipe: ChatRenderer) -> None:
    assert pipe.render({"t": "reconnecting", "attempt": 1, "code": 1001}) == "[reconnecting…]\n"
    assert pipe.render({"t": "reconnecting", "attempt": 2}) == ""
    assert pipe.render({"t": "reconnected", "attempt": 2}) == "[reconnected]\n"


def test_notices_are_dimmed_on_a_tty() -> None:
    r = ChatRenderer(me="alice", tty=True)
    assert r.render({"t": "reconnected", "attempt": 1}) == "\x1b[2m[reconnected]\x1b[0m\n"


def test_reconnect_notice_mid_stream_ends_the_line_first(pipe: ChatRenderer) -> None:
    assert play(pipe, delta("Hal"), {"t": "reconnecting", "attempt": 1}) == (
        "Samantha: Hal\n[reconnecting…]\n")


def test_presence_hides_myself(pipe: ChatRenderer) -> None:
    assert pipe.render({"t": "presence", "room": ROOM, "joined": ["alice"], "left": []}) == ""
    assert pipe.render({"t": "presence", "room": ROOM, "joined": ["samantha"], "left": []}) == (
        "[samantha joined]\n")


def test_errors_and_unknown_events(pipe: ChatRenderer) -> None:
    assert pipe.render({"t": "error", "code": "too_large", "message": "text too long"}) == (
        "[error too_large: text too long]\n")
    assert pipe.render({"t": "something_new"}) == ""


def test_joined_banner(pipe: ChatRenderer) -> None:
    joined = {"t": "joined", "room": ROOM, "seq": 30, "gap": False}
    assert pipe.render_joined(joined, 20) == f"[joined {ROOM} — 20 earlier messages]\n"
    assert pipe.render_joined({**joined, "gap": True}, 1).endswith(
        "1 earlier message (older ones are no longer kept)]\n")
    assert pipe.render_joined(joined, 0) == f"[joined {ROOM}]\n"


def test_finish_closes_an_open_stream(pipe: ChatRenderer) -> None:
    pipe.render(delta("half"))
    assert pipe.finish() == "\n"
    assert pipe.finish() == ""


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["samantha"])
    assert (args.persona, args.msgpack, args.token) == ("samantha", False, None)
    assert args.url.startswith("ws://")


def test_missing_token_names_the_fix(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OS1_TOKEN", raising=False)
    assert main(["samantha"]) == 2
    assert "os1 token --role human --sub YOU" in capsys.readouterr().err


def test_reconnected_names_rooms_whose_history_the_hub_lost(pipe: ChatRenderer) -> None:
    event = {"t": "reconnected", "attempt": 1,
             "rooms": {ROOM: {"seq": 0, "reset": True}, "group:x": {"seq": 4}}}
    assert pipe.render(event) == f"[reconnected (the hub lost earlier history of {ROOM})]\n"
