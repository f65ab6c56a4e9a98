"""Who on this node receives an event of a room: the local routing table. Pure, no I/O.

A connection receives a room's events when it joined the room, when the room is its
user's dm (the inbox on both sides: a persona's connections on the persona side, a
human's on the human side — an observer or admin, or a human whose id is a persona's, gets
no one's dm by sharing an id), when it watches the room or `collective:*`, or — for
`collective:all` — when it is a persona.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from typing import Generic, TypeVar

from server.rooms import COLLECTIVE_ALL

C = TypeVar("C", bound=Hashable)
_EMPTY: frozenset[object] = frozenset()


def channels_for(room: str) -> list[str]:
    """Engine channels a node subscribes to while a local connection has joined `room`.

    Every connection also holds its user's `inbox:<user>` from attach on (every dm room of
    that user, either side, and events sent to the user itself), so joining a dm room needs
    only that room's own channel — not the other party's whole inbox. `collective` covers
    every collective room.
    """
    if room.startswith("collective:"):
        return ["collective"]
    return [f"room:{room}"]


class Routes(Generic[C]):
    def __init__(self) -> None:
        self.joined: dict[str, set[C]] = {}
        # A user has one to a few connections: a list costs a quarter of a set, per user.
        self.inbox: dict[str, list[C]] = {}
        self.watchers: dict[str, set[C]] = {}
        self.watch_all: set[C] = set()
        self.personas: set[C] = set()
        self.others: set[C] = set()  # observers and admins: no dm inbox (humans are the rest)

    @staticmethod
    def _add(table: dict[str, set[C]], key: str, conn: C) -> bool:
        """Add; True when `key` had no connection before (a channel to subscribe)."""
        conns = table.get(key)
        if conns is None:
            table[key] = {conn}
            return True
        conns.add(conn)
        return False

    @staticmethod
    def _remove(table: dict[str, set[C]], key: str, conn: C) -> bool:
        """Remove; True when `key` has no connection left."""
        conns = table.get(key)
        if conns is None:
            return False
        conns.discard(conn)
        if conns:
            return False
        del table[key]
        return True

    def join(self, room: str, conn: C) -> bool:
        return self._add(self.joined, room, conn)

    def leave(self, room: str, conn: C) -> bool:
        return self._remove(self.joined, room, conn)

    def add_inbox(self, user: str, conn: C) -> bool:
        conns = self.inbox.get(user)
        if conns is None:
            self.inbox[user] = [conn]
            return True
        if conn not in conns:
            conns.append(conn)
        return False

    def remove_inbox(self, user: str, conn: C) -> bool:
        conns = self.inbox.get(user)
        if conns is None or conn not in conns:
            return False
        conns.remove(conn)
        if conns:
            return False
        del self.inbox[user]
        return True

    def watch(self, room: str, conn: C) -> bool:
        if room == "collective:*":
            self.watch_all.add(conn)
            return False
        return self._add(self.watchers, room, conn)

    def unwatch(self, room: str, conn: C) -> bool:
        if room == "collective:*":
            self.watch_all.discard(conn)
            return False
        return self._remove(self.watchers, room, conn)

    def targets(self, room: str) -> Iterable[C]:
        """Every local connection for an event of `room`, each once."""
        joined = self.joined.get(room)
        kind = room[: room.find(":")]
        if kind == "dm":
            _, persona, human = room.split(":", 2)
            extra: list[Collection[C] | None] = [self.dm_side(persona, persona=True),
                                                 self.dm_side(human, persona=False)]
        elif kind == "collective":
            extra = [self.watchers.get(room), self.watch_all]
            if room == COLLECTIVE_ALL:
                extra.append(self.personas)
        else:
            return joined or _EMPTY  # type: ignore[return-value]
        groups = [g for g in (joined, *extra) if g]
        if not groups:
            return _EMPTY  # type: ignore[return-value]
        if len(groups) == 1:
            return groups[0]
        return set().union(*groups)

    def dm_side(self, user: str, *, persona: bool) -> list[C] | None:
        """The connections of ``user`` that hold one side of its dm rooms."""
        conns = self.inbox.get(user)
        if not conns:
            return None
        if persona:
            return [c for c in conns if c in self.personas]
        return [c for c in conns if c not in self.personas and c not in self.others]

    def count(self) -> int:
        return len(self.joined)
