"""server.routing: which local connections get a room's events, and the engine channels."""

from __future__ import annotations

import pytest

from server.routing import Routes, channels_for

DM = "dm:sam:alice"


def targets(routes: Routes[str], room: str) -> list[str]:
    """The targets as a sorted list, checking that none is listed twice."""
    got = list(routes.targets(room))
    assert len(got) == len(set(got)), f"duplicates in {got}"
    return sorted(got)


@pytest.fixture
def routes() -> Routes[str]:
    r: Routes[str] = Routes()
    r.join(DM, "alice-1")
    r.add_inbox("alice", "alice-1")
    r.add_inbox("alice", "alice-2")
    r.add_inbox("sam", "sam-1")
    r.add_inbox("bob", "bob-1")
    r.join("group:g", "bob-1")
    r.join("group:g", "sam-1")
    r.personas.update({"sam-1", "ava-1"})
    r.add_inbox("ava", "ava-1")
    r.join("collective:ops", "ava-1")
    r.watch("collective:ops", "dash-1")
    r.watch("collective:other", "dash-2")
    r.watch("collective:*", "admin-1")
    return r


def test_channels_for() -> None:
    assert channels_for(DM) == [f"room:{DM}"]  # the inboxes come with attach, not join
    assert channels_for("group:g") == ["room:group:g"]
    assert channels_for("collective:ops") == ["collective"]
    assert channels_for("collective:all") == ["collective"]


def test_dm_goes_to_joined_and_both_inboxes_once(routes: Routes[str]) -> None:
    # alice-1 both joined the dm and has the inbox: listed once.
    assert targets(routes, DM) == ["alice-1", "alice-2", "sam-1"]


def test_dm_of_other_people_reaches_only_them(routes: Routes[str]) -> None:
    assert targets(routes, "dm:sam:bob") == ["bob-1", "sam-1"]
    assert targets(routes, "dm:nobody:ghost") == []


def test_group_goes_to_joined_only(routes: Routes[str]) -> None:
    assert targets(routes, "group:g") == ["bob-1", "sam-1"]
    assert targets(routes, "group:empty") == []


def test_collective_goes_to_joined_watchers_and_watch_all(routes: Routes[str]) -> None:
    assert targets(routes, "collective:ops") == ["admin-1", "ava-1", "dash-1"]
    assert targets(routes, "collective:other") == ["admin-1", "dash-2"]
    assert targets(routes, "collective:none") == ["admin-1"]


def test_collective_all_adds_every_persona(routes: Routes[str]) -> None:
    assert targets(routes, "collective:all") == ["admin-1", "ava-1", "sam-1"]


def test_collective_all_without_watch_all() -> None:
    r: Routes[str] = Routes()
    r.personas.add("p")
    r.join("collective:all", "p")
    r.watch("collective:all", "w")
    assert targets(r, "collective:all") == ["p", "w"]
    assert targets(r, "collective:x") == []


def test_personas_do_not_get_other_collectives(routes: Routes[str]) -> None:
    assert "sam-1" not in targets(routes, "collective:ops")


def test_watch_all_does_not_see_groups_or_dms(routes: Routes[str]) -> None:
    assert "admin-1" not in targets(routes, "group:g")
    assert "admin-1" not in targets(routes, DM)


def test_join_and_leave_report_first_and_last() -> None:
    r: Routes[str] = Routes()
    assert r.join("group:g", "a") is True
    assert r.join("group:g", "b") is False
    assert r.join("group:g", "a") is False
    assert r.count() == 1
    assert r.leave("group:g", "a") is False
    assert r.leave("group:g", "b") is True
    assert r.count() == 0
    assert r.leave("group:g", "b") is False
    assert targets(r, "group:g") == []


def test_inbox_first_and_last() -> None:
    r: Routes[str] = Routes()
    assert r.add_inbox("alice", "a1") is True
    assert r.add_inbox("alice", "a2") is False
    assert r.remove_inbox("alice", "a1") is False
    assert targets(r, "dm:sam:alice") == ["a2"]
    assert r.remove_inbox("alice", "a2") is True
    assert r.remove_inbox("alice", "a2") is False
    assert targets(r, "dm:sam:alice") == []


def test_watch_and_unwatch() -> None:
    r: Routes[str] = Routes()
    assert r.watch("collective:ops", "w1") is True
    assert r.watch("collective:ops", "w2") is False
    assert r.watch("collective:*", "w3") is False  # no channel of its own
    assert targets(r, "collective:ops") == ["w1", "w2", "w3"]
    assert r.unwatch("collective:ops", "w1") is False
    assert r.unwatch("collective:ops", "w2") is True
    assert r.unwatch("collective:*", "w3") is False
    assert targets(r, "collective:ops") == []


def test_leaving_one_room_keeps_the_others() -> None:
    r: Routes[str] = Routes()
    r.join("group:a", "c")
    r.join("group:b", "c")
    r.leave("group:a", "c")
    assert targets(r, "group:a") == []
    assert targets(r, "group:b") == ["c"]



def test_a_dm_side_is_only_the_role_of_that_side() -> None:
    r: Routes[str] = Routes()
    for user, conn in [("sam", "sam-persona"), ("sam", "sam-human"), ("alice", "alice-human"),
                       ("alice", "alice-persona"), ("alice", "alice-observer"), ("alice", "alice-admin")]:
        r.add_inbox(user, conn)
    r.personas.update({"sam-persona", "alice-persona"})
    r.others.update({"alice-observer", "alice-admin"})
    # Namesakes of another role get nothing of the dm: only persona sam and human alice.
    assert targets(r, "dm:sam:alice") == ["alice-human", "sam-persona"]
    assert targets(r, "dm:alice:sam") == ["alice-persona", "sam-human"]
