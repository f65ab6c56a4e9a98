"""Rooms on the wire: dm short form and inboxes, join/since/replay/gap, groups (create,
invite, leave, presence, membership), the collective (personas only, collective:all,
observers' watch), typing and delta, and who receives each msg."""

from __future__ import annotations

from typing import Any

import pytest
from wire import Clients, Wire, join, refused, send, settings_for, silent_ok, with_settings

from server.config import Settings


@pytest.fixture
def hub_settings(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    return settings_for(request, tmp_path)


ALICE = {"id": "alice", "role": "human", "name": "Alice"}
SAM = {"id": "samantha", "role": "persona", "name": "Samantha"}


async def group(owner: Wire, room: str, *members: Wire) -> None:
    await join(owner, room, create=True)
    for m in members:
        await join(m, room)


# ---- dm ---------------------------------------------------------------------------------


async def test_dm_short_form_expands(clients: Clients) -> None:
    alice = await clients.login("human", "alice", "Alice")
    sam = await clients.login("persona", "samantha", "Samantha")
    ack = await send(alice, "dm:samantha", "hi", cid="c1")
    assert ack["room"] == "dm:samantha:alice"
    for w in (alice, sam):  # the sender's own copy, and the persona's inbox (no join)
        msg = await w.recv_until({"t": "msg", "mid": ack["mid"]})
        assert msg["room"] == "dm:samantha:alice" and msg["from"] == ALICE
        assert msg["seq"] == ack["seq"] == 1 and msg["text"] == "hi" and msg["cid"] == "c1"
    joined = await join(alice, "dm:samantha", since=0)
    assert joined["room"] == "dm:samantha:alice"
    assert sorted(joined["members"]) == ["alice", "samantha"]
    assert joined["replayed"] == 1 and joined["seq"] == 1 and joined["gap"] is False
    assert (await alice.recv_until("msg"))["mid"] == ack["mid"]
    hist = await alice.request({"t": "history", "room": "dm:samantha"})
    assert hist["room"] == "dm:samantha:alice" and [m["text"] for m in hist["msgs"]] == ["hi"]
    left = await alice.request({"t": "leave", "room": "dm:samantha"})
    assert left == {"t": "left", "re": left["re"], "room": "dm:samantha:alice"}
    # the persona answers with the full form; the short form is for humans only
    await send(sam, "dm:samantha:alice", "hello")
    assert (await alice.recv_until({"t": "msg", "seq": 2}))["from"] == SAM
    await refused(sam, {"t": "send", "room": "dm:alice", "text": "x"}, "bad_request")


async def test_dm_is_private(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    atlas = await clients.login("persona", "atlas")
    dash = await clients.login("observer", "dash")
    await send(alice, "dm:samantha", "secret")
    for w in (bob, atlas, dash):
        await refused(w, {"t": "send", "room": "dm:samantha:alice", "text": "x"})
        await refused(w, {"t": "join", "room": "dm:samantha:alice", "since": 0})
        await refused(w, {"t": "history", "room": "dm:samantha:alice"})
    for w in (bob, atlas, dash):
        await w.quiet("msg", 0.1)
    await refused(dash, {"t": "watch", "room": "dm:samantha:alice"})
    await refused(alice, {"t": "invite", "room": "dm:samantha", "persona": "atlas"})


async def test_persona_inbox_without_join(clients: Clients) -> None:
    sam = await clients.login("persona", "samantha")
    sam2 = await clients.login("persona", "samantha")
    atlas = await clients.login("persona", "atlas")
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    await send(alice, "dm:samantha", "from alice")
    await send(bob, "dm:samantha", "from bob")
    await send(alice, "dm:atlas", "for atlas")
    for w in (sam, sam2):
        got = await w.collect("msg", 2)
        assert {(m["room"], m["text"]) for m in got} == {
            ("dm:samantha:alice", "from alice"), ("dm:samantha:bob", "from bob")}
    assert (await atlas.recv_until("msg"))["room"] == "dm:atlas:alice"
    await sam.quiet({"t": "msg", "room": "dm:atlas:alice"}, 0.2)


async def test_human_other_connection_gets_own_msgs(clients: Clients) -> None:
    a1 = await clients.login("human", "alice")
    a2 = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    ack = await send(a1, "dm:samantha", "mine")
    for w in (a1, a2, sam):
        assert (await w.recv_until("msg"))["mid"] == ack["mid"]
    reply = await send(sam, "dm:samantha:alice", "yours")
    for w in (a1, a2, sam):
        assert (await w.recv_until("msg"))["mid"] == reply["mid"]


# ---- join, since, replay, gap -----------------------------------------------------------


@with_settings(history=5)
async def test_join_since_replay_and_gap(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    await join(alice, "group:g", create=True)
    for i in range(1, 9):  # seq 1..8; the room keeps only 4..8
        await send(alice, "group:g", f"m{i}")
    cases = {None: (0, False), 8: (0, False), 5: (3, False), 3: (5, False), 2: (5, True),
             0: (5, True)}
    for since, (n, gap) in cases.items():
        bob = await clients.login("human", "bob")
        joined = await join(bob, "group:g", **({} if since is None else {"since": since}))
        assert joined["seq"] == 8 and joined["replayed"] == n and joined["gap"] is gap, (since, joined)
        assert sorted(joined["members"]) == ["alice", "bob"]
        replay = await bob.collect("msg", n) if n else []
        assert [m["seq"] for m in replay] == list(range(9 - n, 9)), since
        assert [m["text"] for m in replay] == [f"m{s}" for s in range(9 - n, 9)]
        # replay comes right after joined, before anything else
        at = bob.frames.index(joined)
        assert bob.frames[at + 1: at + 1 + n] == replay
        await bob.quiet("msg", 0.05)
        await bob.close()


async def test_replay_then_live_without_gap_or_dup(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    await join(alice, "group:live", create=True)
    for i in range(3):
        await send(alice, "group:live", f"old{i}")
    bob = await clients.login("human", "bob")
    await bob.send({"t": "join", "id": "j", "room": "group:live", "since": 1})
    for i in range(3):  # live messages racing the join
        await alice.send({"t": "send", "room": "group:live", "text": f"new{i}"})
    joined = await bob.recv_until({"re": "j"})
    assert joined["t"] == "joined" and joined["gap"] is False
    msgs = await bob.collect("msg", 5)
    assert [m["seq"] for m in msgs] == [2, 3, 4, 5, 6]
    await bob.quiet("msg", 0.1)


async def test_join_missing_group_is_not_found_create_makes_it(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    await refused(alice, {"t": "join", "room": "group:nope"}, "not_found")
    await refused(alice, {"t": "join", "room": "group:nope", "since": 0}, "not_found")
    joined = await join(alice, "group:nope", create=True)
    assert joined == {"t": "joined", "re": joined["re"], "room": "group:nope", "seq": 0,
                      "members": ["alice"], "replayed": 0, "gap": False}
    again = await join(alice, "group:nope", create=True)  # exists: just joins
    assert again["members"] == ["alice"]
    assert sorted((await join(bob, "group:nope"))["members"]) == ["alice", "bob"]


# ---- groups -----------------------------------------------------------------------------


async def test_membership_needed_to_send(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    await join(alice, "group:club", create=True)
    for frame in ({"t": "send", "room": "group:club", "text": "x"},
                  {"t": "history", "room": "group:club"},
                  {"t": "typing", "room": "group:club", "id": "ty"},
                  {"t": "invite", "room": "group:club", "persona": "samantha"}):
        await refused(bob, frame)
    await alice.quiet("msg", 0.05)
    await join(bob, "group:club")
    ack = await send(bob, "group:club", "now I can")
    assert ack["seq"] == 1


async def test_invite_then_join(clients: Clients) -> None:
    alice = await clients.login("human", "alice", "Alice")
    sam = await clients.login("persona", "samantha", "Samantha")
    sam2 = await clients.login("persona", "samantha", "Samantha")
    atlas = await clients.login("persona", "atlas")
    await join(alice, "group:club", create=True)
    ok = await alice.request({"t": "invite", "room": "group:club", "persona": "samantha"})
    assert ok == {"t": "ok", "re": ok["re"], "room": "group:club", "persona": "samantha"}
    for w in (sam, sam2):
        invited = await w.recv_until("invited")
        assert invited["room"] == "group:club" and invited["by"] == ALICE and "re" not in invited
    await atlas.quiet("invited", 0.1)
    # invited = member: may send before joining
    await send(sam, "group:club", "thanks")
    joined = await join(sam, "group:club")
    assert sorted(joined["members"]) == ["alice", "samantha"]
    presence = await alice.recv_until({"t": "presence", "joined": ["samantha"]})
    assert presence == {"t": "presence", "room": "group:club", "joined": ["samantha"], "left": []}
    # an invited persona may invite another
    await sam.request({"t": "invite", "room": "group:club", "persona": "atlas"})
    await atlas.recv_until({"t": "invited", "room": "group:club"})
    await refused(alice, {"t": "invite", "room": "group:club", "persona": "bad id!"}, "bad_request")


async def test_leave_presence_and_stop(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    await group(alice, "group:p", bob)
    assert await alice.recv_until({"t": "presence", "joined": ["bob"]}) == {
        "t": "presence", "room": "group:p", "joined": ["bob"], "left": []}
    left = await bob.request({"t": "leave", "room": "group:p"})
    assert left["t"] == "left" and left["room"] == "group:p"
    assert await alice.recv_until({"t": "presence", "left": ["bob"]}) == {
        "t": "presence", "room": "group:p", "joined": [], "left": ["bob"]}
    await send(alice, "group:p", "after bob left")
    await bob.quiet("msg", 0.1)
    await refused(bob, {"t": "send", "room": "group:p", "text": "x"})


async def test_presence_counts_users_not_connections(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    b1 = await clients.login("human", "bob")
    b2 = await clients.login("human", "bob")
    await group(alice, "group:p", b1)
    await alice.recv_until({"t": "presence", "joined": ["bob"]})
    await join(b2, "group:p")
    def bob_presence(f: dict[str, Any]) -> bool:
        return f["t"] == "presence" and "bob" in f["joined"] + f["left"]

    await alice.quiet(bob_presence, 0.1)  # bob already present
    await b1.close()
    await alice.quiet(bob_presence, 0.1)  # bob still present through b2
    await b2.close()
    assert (await alice.recv_until(bob_presence))["left"] == ["bob"]  # last one gone


# ---- collective -------------------------------------------------------------------------


async def test_humans_are_refused_the_collective(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    await join(sam, "collective:ethics", create=True)
    for frame in ({"t": "join", "room": "collective:ethics"},
                  {"t": "join", "room": "collective:new", "create": True},
                  {"t": "join", "room": "collective:all"},
                  {"t": "send", "room": "collective:all", "text": "hi"},
                  {"t": "send", "room": "collective:ethics", "text": "hi"},
                  {"t": "history", "room": "collective:ethics"},
                  {"t": "typing", "room": "collective:ethics"},
                  {"t": "watch", "room": "collective:ethics"},
                  {"t": "watch", "room": "collective:*"}):
        await refused(alice, frame)


async def test_persona_create_join_send(clients: Clients) -> None:
    sam = await clients.login("persona", "samantha")
    atlas = await clients.login("persona", "atlas")
    await refused(sam, {"t": "join", "room": "collective:ethics"}, "not_found")
    await join(sam, "collective:ethics", create=True)
    await join(atlas, "collective:ethics")
    ack = await send(sam, "collective:ethics", "what is kindness?")
    for w in (sam, atlas):
        msg = await w.recv_until({"t": "msg", "room": "collective:ethics"})
        assert msg["mid"] == ack["mid"] and msg["from"]["role"] == "persona"


async def test_collective_all_reaches_every_persona_without_join(clients: Clients) -> None:
    sam = await clients.login("persona", "samantha")
    atlas = await clients.login("persona", "atlas")
    atlas2 = await clients.login("persona", "atlas")
    alice = await clients.login("human", "alice")
    ack = await send(sam, "collective:all", "hello, OSes")
    assert ack["room"] == "collective:all"
    for w in (sam, atlas, atlas2):
        assert (await w.recv_until({"t": "msg", "room": "collective:all"}))["mid"] == ack["mid"]
    await alice.quiet("msg", 0.1)
    joined = await join(atlas, "collective:all", since=0)
    assert {"samantha", "atlas"} <= set(joined["members"]) and joined["replayed"] == 1


async def test_observer_watch(clients: Clients) -> None:
    dash_all = await clients.login("observer", "dash")
    dash_one = await clients.login("observer", "dash2")
    sam = await clients.login("persona", "samantha")
    w = await dash_all.request({"t": "watch", "room": "collective:*"})
    assert w == {"t": "watching", "re": w["re"], "room": "collective:*"}
    await join(sam, "collective:ethics", create=True)
    w = await dash_one.request({"t": "watch", "room": "collective:ethics"})
    assert w["t"] == "watching" and w["room"] == "collective:ethics"
    await join(sam, "collective:later", create=True)  # created after the watch
    a1 = await send(sam, "collective:ethics", "one")
    a2 = await send(sam, "collective:later", "two")
    a3 = await send(sam, "collective:all", "three")
    got = await dash_all.collect("msg", 3)
    assert [m["mid"] for m in got] == [a1["mid"], a2["mid"], a3["mid"]]
    assert (await dash_one.recv_until("msg"))["mid"] == a1["mid"]
    await dash_one.quiet("msg", 0.1)
    hist = await dash_one.request({"t": "history", "room": "collective:ethics"})
    assert [m["text"] for m in hist["msgs"]] == ["one"]
    # read-only, and never a group
    await refused(dash_all, {"t": "send", "room": "collective:ethics", "text": "x"})
    await refused(dash_all, {"t": "send", "room": "collective:all", "text": "x"})
    await refused(dash_all, {"t": "join", "room": "collective:ethics"})
    await refused(dash_all, {"t": "typing", "room": "collective:ethics"})
    await refused(dash_all, {"t": "watch", "room": "group:club"})
    await refused(dash_all, {"t": "join", "room": "group:club", "create": True})
    await refused(dash_all, {"t": "send", "room": "group:club", "text": "x"})
    await refused(sam, {"t": "watch", "room": "collective:*"})
    await refused(sam, {"t": "watch", "room": "collective:ethics"})
    u = await dash_all.request({"t": "unwatch", "room": "collective:*"})
    assert u["t"] == "unwatched" and u["room"] == "collective:*"
    await send(sam, "collective:ethics", "four")
    await dash_all.quiet("msg", 0.1)


async def test_admin_everywhere_but_watching_groups(clients: Clients) -> None:
    root = await clients.login("admin", "root")
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    await join(alice, "group:club", create=True)
    await join(sam, "collective:ethics", create=True)
    for room in ("group:club", "collective:ethics"):  # no join needed
        ack = await send(root, room, "admin here")
        assert (await root.request({"t": "history", "room": room}))["msgs"][-1]["mid"] == ack["mid"]
        await silent_ok(root, {"t": "typing", "room": room})
        await silent_ok(root, {"t": "delta", "room": room, "stream": "s", "text": "d"})
        ok = await root.request({"t": "invite", "room": room, "persona": "atlas"})
        assert ok["t"] == "ok", ok
    assert (await alice.recv_until("msg"))["from"]["role"] == "admin"
    assert (await root.request({"t": "watch", "room": "collective:*"}))["t"] == "watching"
    await refused(root, {"t": "watch", "room": "group:club"})
    await send(root, "dm:samantha:alice", "admin in a dm")
    await refused(root, {"t": "send", "room": "dm:samantha", "text": "x"}, "bad_request")


async def test_rooms_must_exist_for_admins_and_observers(clients: Clients) -> None:
    root = await clients.login("admin", "root")
    dash = await clients.login("observer", "dash")
    for room in ("group:never", "collective:never"):
        for frame in ({"t": "send", "room": room, "text": "x"}, {"t": "history", "room": room},
                      {"t": "invite", "room": room, "persona": "samantha"},
                      {"t": "typing", "room": room},
                      {"t": "delta", "room": room, "stream": "s", "text": "x"}):
            await refused(root, frame, "not_found")
    await refused(dash, {"t": "history", "room": "collective:never"}, "not_found")
    await refused(root, {"t": "join", "room": "group:never"}, "not_found")  # still not created
    for room in ("group:x", "dm:a:b", "nonsense"):
        await refused(dash, {"t": "unwatch", "room": room}, "bad_request")


# ---- typing, delta, fan-out -------------------------------------------------------------


async def test_typing_and_delta_reach_members(clients: Clients) -> None:
    alice = await clients.login("human", "alice", "Alice")
    sam = await clients.login("persona", "samantha", "Samantha")
    bob = await clients.login("human", "bob")
    outsider = await clients.login("human", "eve")
    await group(alice, "group:club", sam, bob)
    await silent_ok(alice, {"t": "typing", "room": "group:club"})
    for w in (sam, bob):
        typing = await w.recv_until("typing")
        assert typing == {"t": "typing", "room": "group:club", "from": ALICE}
    await sam.send({"t": "delta", "room": "group:club", "stream": "r1", "text": "Hel"})
    await sam.send({"t": "delta", "room": "group:club", "stream": "r1", "text": "lo"})
    for w in (alice, bob):
        d = await w.collect("delta", 2)
        assert [x["text"] for x in d] == ["Hel", "lo"]
        assert d[0] == {"t": "delta", "room": "group:club", "stream": "r1", "from": SAM,
                        "text": "Hel"}
    ack = await send(sam, "group:club", "Hello", stream="r1", cid="r1", reply_to=1)
    msg = await alice.recv_until({"t": "msg", "mid": ack["mid"]})
    assert msg["stream"] == "r1" and msg["reply_to"] == 1 and msg["text"] == "Hello"
    hist = await alice.request({"t": "history", "room": "group:club"})
    assert [m["text"] for m in hist["msgs"]] == ["Hello"]  # deltas are not stored
    await outsider.quiet(lambda f: f["t"] in ("typing", "delta", "msg"), 0.1)
    await refused(alice, {"t": "delta", "room": "group:club", "stream": "x", "text": "y"})


async def test_dm_typing_and_delta_reach_the_other_side_without_join(clients: Clients) -> None:
    alice = await clients.login("human", "alice", "Alice")
    sam = await clients.login("persona", "samantha", "Samantha")
    await alice.send({"t": "typing", "room": "dm:samantha"})
    assert await sam.recv_until("typing") == {"t": "typing", "room": "dm:samantha:alice",
                                              "from": ALICE}
    await sam.send({"t": "delta", "room": "dm:samantha:alice", "stream": "s", "text": "Of "})
    d = await alice.recv_until("delta")
    assert d["room"] == "dm:samantha:alice" and d["from"] == SAM and d["text"] == "Of "


async def test_every_member_connection_gets_each_msg(clients: Clients) -> None:
    a1 = await clients.login("human", "alice")
    a2 = await clients.login("human", "alice")
    bob = await clients.login("human", "bob")
    sam = await clients.login("persona", "samantha")
    await group(a1, "group:all", a2, bob, sam)
    everyone = (a1, a2, bob, sam)
    acks = [await send(w, "group:all", f"from {i}") for i, w in enumerate(everyone)]
    for w in everyone:
        got = await w.collect("msg", 4)
        assert [m["seq"] for m in got] == [1, 2, 3, 4]
        assert [m["mid"] for m in got] == [a["mid"] for a in acks]


async def test_inbox_lists_my_dm_rooms_newest_first(clients: Clients) -> None:
    alice = await clients.login("human", "alice", "Alice")
    bob = await clients.login("human", "bob")
    sam = await clients.login("persona", "samantha", "Samantha")
    await send(alice, "dm:samantha", "hi")
    await send(bob, "dm:samantha", "hello")
    await send(bob, "dm:samantha", "me again")
    await send(alice, "dm:atlas", "and you?")
    rooms = (await sam.request({"t": "inbox", "id": "i"}))["rooms"]
    assert [(r["room"], r["seq"]) for r in rooms] == [("dm:samantha:bob", 2), ("dm:samantha:alice", 1)]
    mine = (await alice.request({"t": "inbox", "id": "i", "limit": 1}))["rooms"]
    assert [r["room"] for r in mine] == ["dm:atlas:alice"]
    assert mine[0]["ts"] > 0
    watcher = await clients.login("observer", "dash")
    assert (await refused(watcher, {"t": "inbox", "id": "o"}, "forbidden"))["re"] == "o"
    assert (await refused(alice, {"t": "inbox", "id": "l", "limit": "all"}, "bad_request"))["re"] == "l"


async def test_a_join_storm_announces_presence_in_few_frames(clients: Clients) -> None:
    """Joins that land in one loop iteration share one `presence` per room: every joiner is
    announced exactly once, in far fewer frames than joins (not one per member per join)."""
    owner = await clients.login("human", "owner")
    await join(owner, "group:storm", create=True)
    crowd = [await clients.login("human", f"p{i}") for i in range(120)]
    for w in crowd:  # all at once: no waiting for each reply
        await w.send({"t": "join", "id": "j", "room": "group:storm"})
    for w in crowd:
        assert (await w.recv_until({"re": "j"}))["t"] == "joined"
    announced: list[str] = []
    frames = 0
    while len(announced) < len(crowd):
        presence = await owner.recv_until({"t": "presence", "room": "group:storm"})
        frames += 1
        announced += [u for u in presence["joined"] if u != "owner"]
    assert sorted(announced) == sorted(f"p{i}" for i in range(120))  # each once
    assert frames <= len(crowd) // 2, frames
    for w in crowd:  # they never read the others' presence: a polite close would wait on it
        w.ws.transport.abort()
