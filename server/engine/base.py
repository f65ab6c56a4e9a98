"""The engine contract: the store and the fan-out under the hub.

An engine keeps each room's log (gapless seq, bounded retention, cid idempotency), room
existence and members, presence, and carries live events to every node's listener.
MemoryEngine is the embedded default; RedisEngine shares one store between hub nodes.
The same test suite (tests/test_engine.py) runs over every implementation.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from server.errors import Conflict

Event = dict[str, Any]
Listener = Callable[[str, Event], None]
Append = tuple[str, Event, str, str | None]  # room, msg, sender, cid: one `append`


@dataclass(frozen=True, slots=True)
class Appended:
    """The stored `msg` frame, and whether it was already there (a retried cid)."""

    msg: Event
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Page:
    """Messages with seq > after (oldest first), what is retained, and the newest seq."""

    msgs: list[Event]
    first_retained: int  # lowest seq still stored (last + 1 when the room is empty)
    last: int


class Engine(ABC):
    name: str = "engine"
    # True when append_many saves round trips: the hub then lets a connection's sends queue
    # and hands them over in batches (one fast sender needs many appends in flight).
    pipelines: bool = False

    def __init__(self) -> None:
        self._listener: Listener | None = None
        # Identifies this store's history: when it changes (a memory hub restarted), seqs
        # start again from 1 and clients must forget the seqs they saw.
        self.epoch = uuid.uuid4().hex[:12]

    def set_listener(self, listener: Listener) -> None:
        """Called with (room, event) for every live event of a subscribed channel."""
        self._listener = listener

    def _emit(self, room: str, event: Event) -> None:
        if self._listener is not None:
            self._listener(room, event)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect; called once before use."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and background tasks."""

    async def subscribe(self, channel: str) -> None:  # noqa: B027 - one node needs none
        """Start receiving the events of `channel` (see server.channels)."""

    async def unsubscribe(self, channel: str) -> None:  # noqa: B027
        """Stop receiving `channel`."""

    @abstractmethod
    async def ready(self) -> bool:
        """True when appends and live delivery work right now."""

    @abstractmethod
    async def append(self, room: str, msg: Event, *, sender: str, cid: str | None) -> Appended:
        """Store `msg` (no seq/mid yet) atomically: cid check, next seq, retention, publish.

        Raises Conflict when `cid` was used by `sender` in `room` for another text.
        """

    async def append_many(self, items: Sequence[Append]) -> list[Appended | Conflict]:
        """`append` each item, in order (one round trip where the store allows): an
        Appended or the item's Conflict each; a store error raises, as from append."""
        out: list[Appended | Conflict] = []
        for room, msg, sender, cid in items:
            try:
                out.append(await self.append(room, msg, sender=sender, cid=cid))
            except Conflict as err:
                out.append(err)
        return out

    @abstractmethod
    async def inbox(self, user: str, *, persona: bool, limit: int) -> list[Event]:
        """Up to `limit` dm rooms of `user` — as their persona (`dm:<user>:*`) or as their
        human (`dm:*:<user>`) — most recently active first: {room, seq, ts} each, seq and
        ts of the room's newest msg. Recent activity only, where the store keeps a bounded
        log of it (Redis: the user's inbox log)."""

    @abstractmethod
    async def publish(self, room: str, event: Event) -> None:
        """Deliver an ephemeral event (delta, typing, presence) to every node; not stored."""

    @abstractmethod
    async def notify(self, user: str, event: Event) -> None:
        """Deliver an event to `user`'s connections on every node (listener room: user:<id>)."""

    @abstractmethod
    async def read_after(self, room: str, after: int, limit: int) -> Page:
        """Up to `limit` messages with seq > after, oldest first."""

    @abstractmethod
    async def read_before(self, room: str, before: int | None, limit: int) -> list[Event]:
        """The `limit` newest messages with seq < before (all when None), oldest first."""

    @abstractmethod
    async def create_room(self, room: str) -> bool:
        """Create a group/collective room; False when it existed already."""

    @abstractmethod
    async def room_exists(self, room: str) -> bool: ...

    @abstractmethod
    async def rooms(self, kind: str, limit: int) -> list[str]:
        """Up to `limit` created rooms of `kind` (group or collective), sorted."""

    @abstractmethod
    async def add_member(self, room: str, user: str) -> None: ...

    @abstractmethod
    async def remove_member(self, room: str, user: str) -> None: ...

    @abstractmethod
    async def is_member(self, room: str, user: str) -> bool: ...

    @abstractmethod
    async def members(self, room: str) -> list[str]: ...

    @abstractmethod
    async def presence_add(self, room: str, user: str, node: str) -> bool:
        """Mark `user` present in `room` from `node`; True when newly present anywhere."""

    @abstractmethod
    async def presence_remove(self, room: str, user: str, node: str) -> bool:
        """Unmark; True when `user` is now present nowhere."""

    @abstractmethod
    async def present(self, room: str) -> list[str]:
        """Users present in `room` on any node."""

    @abstractmethod
    async def revoke(self, user: str, upto: int) -> None:
        """Tokens of `user` issued at or before `upto` (epoch seconds) are no longer valid."""

    @abstractmethod
    async def revoked_upto(self, user: str) -> int:
        """The latest revocation second of `user`, 0 when never revoked."""
