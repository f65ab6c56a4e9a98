"""server.keys: the hash tags, and the channel mapping the Redis engine's dedupe relies on.
Pure: no Redis."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from server import keys
from server.routing import channels_for

ROOMS = ["group:g", "collective:all", "collective:c", "dm:samantha:alice", "dm:sam:sam",
         "user:alice"]


def slot_tag(key: str) -> str:
    """The part Redis Cluster hashes: what is inside the first {...}."""
    return key[key.index("{") + 1 : key.index("}")]


def test_a_rooms_keys_and_channel_share_one_hash_tag() -> None:
    room = "dm:samantha:alice"
    names = [keys.log(room), keys.seq(room), keys.cid(room, "alice", "c{1}"), keys.members(room),
             keys.presence_where(room), keys.presence_count(room), keys.channel(room)]
    assert {slot_tag(n) for n in names} == {room}


@pytest.mark.parametrize("room", ROOMS)
def test_subs_matching_are_exactly_the_subscriptions_that_receive_a_room(room: str) -> None:
    name = keys.channel(room)
    abstract = ["inbox:alice", "inbox:samantha", "inbox:sam", "inbox:bob", "collective",
                *(f"room:{r}" for r in ROOMS)]
    receiving = {s for a in abstract for s in keys.subs_for(a)
                 if (fnmatchcase(name, s.name) if s.pattern else name == s.name)}
    assert receiving <= set(keys.subs_matching(room))
    assert len(set(keys.subs_matching(room))) == len(keys.subs_matching(room))


@pytest.mark.parametrize("room", [r for r in ROOMS if not r.startswith("user:")])
def test_the_hubs_channels_for_a_room_reach_it(room: str) -> None:
    for abstract in channels_for(room):
        assert set(keys.subs_for(abstract)) & set(keys.subs_matching(room)), abstract


def test_notify_reaches_the_inbox() -> None:
    assert keys.Sub(False, keys.user_channel("alice")) in keys.subs_for("inbox:alice")
    assert keys.room_of_channel(keys.user_channel("alice")) == "user:alice"
    assert keys.room_of_channel("elsewhere") is None


def test_glob_characters_are_escaped_in_patterns() -> None:
    assert keys.dm_pattern("a*b", None) == "os1:ch:{dm:a\\*b:*}"


def test_an_inbox_log_shares_the_slot_of_its_user_channel() -> None:
    # on Cluster the dm follow-up writes the log and publishes the channel on one shard
    assert slot_tag(keys.inbox("alice")) == slot_tag(keys.user_channel("alice")) == "user:alice"
    assert keys.dm_sides("dm:samantha:alice") == ["samantha", "alice"]
