"""Which worker answers which conversation (personas.leases): pure rules, no store."""

from __future__ import annotations

from collections import Counter

from personas.leases import Roster, owner

ROOMS = [f"dm:samantha:person{i}" for i in range(3000)]


def test_alone_a_worker_owns_everything_and_a_worker_off_the_roster_owns_nothing() -> None:
    assert all(Roster("a", {"a": 0}).owns(r) for r in ROOMS[:50])
    assert not any(Roster("a", {}).owns(r) for r in ROOMS[:50])  # its lease ran out
    assert not any(Roster("a", {"b": 0}).owns(r) for r in ROOMS[:50])


def test_every_room_has_exactly_one_owner_and_the_share_is_fair() -> None:
    loads = {"a": 0, "b": 0, "c": 0}
    views = [Roster(w, loads) for w in loads]
    for room in ROOMS:
        assert sum(v.owns(room) for v in views) == 1
    shares = Counter(owner(r, loads) for r in ROOMS)
    assert all(800 < n < 1200 for n in shares.values()), shares  # 1,000 each, give or take


def test_when_a_worker_goes_only_its_rooms_move() -> None:
    before = {w: Roster(w, {"a": 0, "b": 0, "c": 0}) for w in "abc"}
    after = {w: Roster(w, {"a": 0, "b": 0}) for w in "ab"}
    moved = {r for r in ROOMS if owner(r, "abc") != owner(r, "ab")}
    assert moved == {r for r in ROOMS if owner(r, "abc") == "c"}
    gained = set(after["a"].gained(before["a"], ROOMS)) | set(after["b"].gained(before["b"], ROOMS))
    assert gained == moved
    assert not set(after["a"].gained(before["a"], ROOMS)) & set(after["b"].gained(before["b"], ROOMS))


def test_a_new_worker_takes_a_share_from_each_and_nothing_moves_between_the_old_ones() -> None:
    for room in ROOMS:
        new = owner(room, "abc")
        assert new in ("c", owner(room, "ab"))


def test_the_honest_head_count_adds_the_other_workers_load() -> None:
    roster = Roster("a", {"a": 10, "b": 32, "c": 1})
    assert roster.others_load() == 33
    assert roster.workers == ("a", "b", "c")
