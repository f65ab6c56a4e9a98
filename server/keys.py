"""Every Redis key and Pub/Sub channel name OS1 uses, in one place (like arq's constants).

Everything lives under PREFIX. A room's keys and its channel carry the hash tag `{<room>}`,
so on Redis Cluster they share one slot: the append script may touch all of them, and
sharded Pub/Sub (SPUBLISH) lands on the shard that stores the room. The one exception is a
dm's append, which also writes both sides' inbox logs (`{user:<id>}`): one Redis today;
docs/scaling.md says how it splits on Cluster.

Ids inside keys come validated by server.rooms (letters, digits, `_ . @ -`), so `:` and
newline are safe separators; glob characters are escaped in patterns all the same.

    os1:{<room>}:log              stream: the room's messages, entry id `<seq>-0`
    os1:{<room>}:seq              string: the last seq handed out (INCR)
    os1:{<room>}:cid:<user>:<cid> string, PX cid_ttl: digest of the text + the stored msg
    os1:{<room>}:members          set: user ids
    os1:{<room>}:where            hash: "<user>\\n<node>" -> 1 (presence per node)
    os1:{<room>}:present          hash: user -> number of nodes where present
    os1:epoch                     string: id of this store's history (welcome.server.epoch)
    os1:rooms                     set: created group/collective rooms
    os1:revoked                   zset: user -> revocation second (ZADD GT keeps the max)
    os1:nodes                     zset: node -> liveness deadline, ms on the Redis clock
    os1:node:{<node>}:presence    set: "<room>\\n<user>" this node marked present (for reaping)
    os1:node:{<node>}:reap        string, PX: lock of the node reaping <node>
    os1:mem:{<persona>}:<user>    string: JSON of what <persona> knows of <user> (personas/redis_store.py)
    os1:people:{<persona>}        zset: user -> last use, ms on the Redis clock (trimmed: max people)
    os1:traits:{<persona>}        hash: v -> version, traits -> JSON of the evolved trait values
    os1:journal:{<persona>}       list: JSON trait journal entries, newest first (trimmed)
    os1:consent                   hash: user -> none|full (topics, the default, is not stored)
    os1:inbox:{user:<id>}         stream, MAXLEN ~ / PX: (room, seq) of each dm msg of <id>, ids on the
                                  Redis clock (append.lua; how a node recovers dm rooms it never saw)
    os1:collective:budget         zset: collective turn -> ms on the Redis clock (a sliding window, PX)
    os1:workers:{<persona>}       zset: worker -> lease deadline, ms on the Redis clock (PX: one lease)
    os1:load:{<persona>}          hash: worker -> conversations it holds now (PX: one lease)

    os1:ch:{<room>}               channel: a room's live events (msgs and ephemeral ones)
    os1:ch:{user:<id>}            channel: events addressed to one user (engine.notify)
    os1:probe:<node>:<token>      channel: one engine's publish->subscribe readiness probe

`subs_for` maps the hub's abstract channels (server.routing) to these channels and
patterns; `subs_matching` lists, in a fixed order, every subscription a room's event
arrives on (the engine delivers it once, from the first one it holds).
"""

from __future__ import annotations

import re
from typing import NamedTuple

PREFIX = "os1:"

EPOCH = PREFIX + "epoch"
ROOMS = PREFIX + "rooms"
REVOKED = PREFIX + "revoked"
NODES = PREFIX + "nodes"
CONSENT = PREFIX + "consent"
COLLECTIVE_BUDGET = PREFIX + "collective:budget"  # personas/collective_budget.lua

_CHANNEL = PREFIX + "ch:"
_GLOB = re.compile(r"([*?\[\]\\])")


def _room(room: str) -> str:
    return f"{PREFIX}{{{room}}}:"


def log(room: str) -> str:
    return _room(room) + "log"


def seq(room: str) -> str:
    return _room(room) + "seq"


def cid(room: str, sender: str, cid: str) -> str:
    # sender ids never contain ':', so the sender/cid boundary is unambiguous
    return f"{_room(room)}cid:{sender}:{cid}"


def members(room: str) -> str:
    return _room(room) + "members"


def presence_where(room: str) -> str:
    return _room(room) + "where"


def presence_count(room: str) -> str:
    return _room(room) + "present"


def node_presence(node: str) -> str:
    return f"{PREFIX}node:{{{node}}}:presence"


def reap_lock(node: str) -> str:
    return f"{PREFIX}node:{{{node}}}:reap"


def inbox(user: str) -> str:
    """The inbox log of `user`: both sides of a dm share the slot of their user channel."""
    return f"{PREFIX}inbox:{{user:{user}}}"


def dm_sides(room: str) -> list[str]:
    """The users whose inbox a room's msgs go to: persona and human of a dm (once when the
    same id), nobody for other rooms."""
    kind, _, rest = room.partition(":")
    if kind != "dm":
        return []
    persona, _, human = rest.partition(":")
    return [persona] if persona == human else [persona, human]


def persona_memory(persona: str, user: str) -> str:
    """What `persona` learned of `user`; with user "" the prefix of them all (memory_put.lua)."""
    return f"{PREFIX}mem:{{{persona}}}:{user}"


def persona_people(persona: str) -> str:
    return f"{PREFIX}people:{{{persona}}}"


def persona_traits(persona: str) -> str:
    return f"{PREFIX}traits:{{{persona}}}"


def persona_journal(persona: str) -> str:
    return f"{PREFIX}journal:{{{persona}}}"


def persona_workers(persona: str) -> str:
    """The live workers of `persona` and their leases (personas/roster.lua)."""
    return f"{PREFIX}workers:{{{persona}}}"


def persona_load(persona: str) -> str:
    return f"{PREFIX}load:{{{persona}}}"


def channel(room: str) -> str:
    """The channel of a room, or of `user:<id>` for events addressed to one user."""
    return f"{_CHANNEL}{{{room}}}"


def user_channel(user: str) -> str:
    return channel(f"user:{user}")


def dm_pattern(persona: str | None, human: str | None) -> str:
    """Pattern of the dm rooms of one side: dm_pattern("sam", None) = every dm:sam:*."""
    p = "*" if persona is None else _escape(persona)
    h = "*" if human is None else _escape(human)
    return f"{_CHANNEL}{{dm:{p}:{h}}}"


COLLECTIVE_PATTERN = f"{_CHANNEL}{{collective:*}}"


class Sub(NamedTuple):
    """One Redis subscription: a channel (SUBSCRIBE) or a pattern (PSUBSCRIBE)."""

    pattern: bool
    name: str


def subs_for(abstract: str) -> list[Sub]:
    """The Redis subscriptions behind an abstract channel (see server.routing.channels_for)."""
    kind, _, rest = abstract.partition(":")
    if kind == "inbox":
        return [Sub(False, user_channel(rest)), Sub(True, dm_pattern(rest, None)),
                Sub(True, dm_pattern(None, rest))]
    if kind == "collective":
        return [Sub(True, COLLECTIVE_PATTERN)]
    if kind == "room":
        return [Sub(False, channel(rest))]
    raise ValueError(f"unknown channel {abstract!r}")


def subs_matching(room: str) -> list[Sub]:
    """Every subscription that receives `room`'s events, in the canonical dedupe order."""
    subs = [Sub(False, channel(room))]
    kind, _, rest = room.partition(":")
    if kind == "dm":
        persona, _, human = rest.partition(":")
        subs += [Sub(True, dm_pattern(persona, None)), Sub(True, dm_pattern(None, human))]
    elif kind == "collective":
        subs.append(Sub(True, COLLECTIVE_PATTERN))
    return subs


def probe_channel(node: str, token: str) -> str:
    return f"{PREFIX}probe:{node}:{token}"


def room_of_channel(name: str) -> str | None:
    """The room (or `user:<id>`) a channel belongs to; None for a foreign channel."""
    if name.startswith(_CHANNEL + "{") and name.endswith("}"):
        return name[len(_CHANNEL) + 1 : -1]
    return None


def _escape(value: str) -> str:
    return _GLOB.sub(r"\\\1", value)
