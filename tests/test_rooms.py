"""server.rooms: room ids `kind:rest`, user ids, and the dm short form."""

from __future__ import annotations

import pytest

from server.errors import BadRequest
from server.rooms import COLLECTIVE_ALL, COLLECTIVE_ANY, Kind, Room, parse_room, valid_id


@pytest.mark.parametrize(
    "value", ["a", "A", "0", "alice", "sam.v2", "bob@example.com", "x_y-z", "a" * 64, "9lives"]
)
def test_valid_ids(value: str) -> None:
    assert valid_id(value)


@pytest.mark.parametrize(
    "value",
    ["", "a" * 65, ".a", "_a", "-a", "@a", "a b", "a:b", "a/b", "a*", "é", "\uff41", "a\n", "\na",
     None, 5, b"alice", ["alice"]],
)
def test_invalid_ids(value: object) -> None:
    assert not valid_id(value)


def test_constants() -> None:
    assert COLLECTIVE_ALL == "collective:all"
    assert COLLECTIVE_ANY == "collective:*"
    assert {k.value for k in Kind} == {"dm", "group", "collective"}


def test_group_room() -> None:
    assert parse_room("group:book-club", user="alice", role="human") == Room(
        "group:book-club", Kind.GROUP, "book-club"
    )


def test_collective_room() -> None:
    assert parse_room("collective:ops", user="sam", role="persona") == Room(
        "collective:ops", Kind.COLLECTIVE, "ops"
    )
    assert parse_room(COLLECTIVE_ALL).kind is Kind.COLLECTIVE


def test_group_and_collective_do_not_depend_on_user_or_role() -> None:
    for role in ("human", "persona", "observer", "admin", ""):
        assert parse_room("group:g", user="u", role=role) == Room("group:g", Kind.GROUP, "g")


def test_dm_short_form_expands_for_humans() -> None:
    room = parse_room("dm:samantha", user="alice", role="human")
    assert room == Room("dm:samantha:alice", Kind.DM, "samantha:alice", "samantha", "alice")


def test_dm_full_form_for_everyone() -> None:
    for role, user in (("human", "alice"), ("persona", "samantha"), ("admin", "root"),
                       ("observer", "dash")):
        room = parse_room("dm:samantha:alice", user=user, role=role)
        assert room == Room("dm:samantha:alice", Kind.DM, "samantha:alice", "samantha", "alice")


def test_dm_full_form_is_not_rewritten_to_the_caller() -> None:
    # A human naming someone else's dm gets that room (permissions refuse it later).
    room = parse_room("dm:samantha:bob", user="alice", role="human")
    assert (room.persona, room.human) == ("samantha", "bob")


@pytest.mark.parametrize("role", ["persona", "observer", "admin", ""])
def test_dm_short_form_only_for_humans(role: str) -> None:
    with pytest.raises(BadRequest, match="short form"):
        parse_room("dm:samantha", user="x", role=role)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("", "non-empty"),
        (None, "non-empty"),
        (42, "non-empty"),
        ("samantha", "kind:name"),
        ("room:x", "unknown room kind"),
        ("DM:samantha", "unknown room kind"),
        (":x", "unknown room kind"),
        ("group:", "bad room name"),
        ("group:a b", "bad room name"),
        ("group:" + "g" * 65, "bad room name"),
        ("group:a:b", "bad room name"),
        ("collective:*", "bad room name"),
        ("collective:", "bad room name"),
        ("dm:", "bad dm room"),
        ("dm::alice", "bad dm room"),
        ("dm:sam:", "bad dm room"),
        ("dm:sam:alice:x", "bad dm room"),
        ("dm:sa m:alice", "bad dm room"),
    ],
)
def test_bad_rooms(raw: object, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        parse_room(raw, user="alice", role="human")


def test_bad_room_message_is_bounded() -> None:
    with pytest.raises(BadRequest) as e:
        parse_room("group:" + "x" * 10_000)
    assert len(e.value.message) < 200


def test_short_form_with_invalid_user_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        parse_room("dm:samantha", user="", role="human")
