"""Sans-I/O resume bookkeeping: which rooms to rejoin, from which seq, and dedupe.

The hub guarantees per-room gapless seqs and replays ``seq > since`` on join, so the client
only has to remember the highest seq it delivered per room and drop anything at or below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Frame = dict[str, Any]


@dataclass
class RoomCursor:
    """A joined room: ``base`` is the seq we are caught up to when no msg was seen yet."""

    base: int


@dataclass
class ResumeState:
    last_seq: dict[str, int] = field(default_factory=dict)
    joined: dict[str, RoomCursor] = field(default_factory=dict)
    watched: set[str] = field(default_factory=set)
    # requested name ("dm:samantha") -> full name ("dm:samantha:alice") the hub replied with
    aliases: dict[str, str] = field(default_factory=dict)
    epoch: str | None = None  # the hub store's epoch (welcome.server.epoch)

    def on_epoch(self, epoch: object) -> bool:
        """A new store (its epoch changed) counts seqs from 1 again: forget what we saw, so
        the resume replays the new store from its start. True when that happened."""
        if not isinstance(epoch, str):
            return False
        changed = self.epoch is not None and epoch != self.epoch
        self.epoch = epoch
        if changed:
            self.last_seq.clear()
            for cursor in self.joined.values():
                cursor.base = 0
        return changed

    def full_name(self, room: str) -> str:
        return self.aliases.get(room, room)

    def accept_msg(self, frame: Frame) -> bool:
        """Record a ``msg`` and say whether to deliver it (False: a duplicate)."""
        room, seq = frame.get("room"), frame.get("seq")
        if not isinstance(room, str) or not isinstance(seq, int):
            return True  # not ours to judge; deliver as is
        seen = self.last_seq.get(room)
        if seen is not None and seq <= seen:
            return False
        self.last_seq[room] = seq
        return True

    def on_joined(self, requested: str, reply: Frame, since: int | None, *, resume: bool) -> None:
        """Runs in the reader before any replayed msg of this join is processed."""
        room = str(reply.get("room", requested))
        self.aliases[requested] = room
        latest = reply.get("seq")
        latest = latest if isinstance(latest, int) else 0
        if resume:
            self.joined.setdefault(room, RoomCursor(base=since if since is not None else latest))
            if since is not None and latest < since:
                # The hub's log restarted below what we saw (an in-memory hub restarted):
                # its seqs count again from there, so our dedupe must too.
                self.joined[room].base = latest
                self.last_seq[room] = latest
            return  # otherwise the cursor and last_seq already describe what we have
        if since is None:
            base = latest  # live from here; nothing older is replayed
        else:
            base = since
            seen = self.last_seq.get(room)
            if seen is not None and seen > since:
                # An explicit, earlier `since` asks for a replay: let it through dedupe.
                self.last_seq[room] = since
        self.joined[room] = RoomCursor(base=base)

    def on_left(self, requested: str, reply: Frame) -> None:
        room = str(reply.get("room", self.full_name(requested)))
        self.joined.pop(room, None)
        self.aliases.pop(requested, None)

    def on_watching(self, requested: str, reply: Frame) -> None:
        self.watched.add(str(reply.get("room", requested)))

    def since_for(self, room: str) -> int:
        cursor = self.joined[room]
        return max(cursor.base, self.last_seq.get(room, cursor.base))

    def resume_hook(self, frame: Frame) -> Callable[[Frame], None]:
        """What to record when the hub answers a frame of :meth:`resume_frames`."""
        room = frame["room"]
        if frame["t"] == "join":
            since = frame.get("since")
            return lambda reply: self.on_joined(room, reply, since, resume=True)
        return lambda reply: self.on_watching(room, reply)

    def forget(self, room: str) -> None:
        """Stop tracking ``room`` (the hub refused to resume it)."""
        self.joined.pop(room, None)
        self.watched.discard(room)
        self.last_seq.pop(room, None)

    def _watch_covers(self, room: str) -> bool:
        return room in self.watched or ("collective:*" in self.watched
                                        and room.startswith("collective:"))

    def resume_frames(self) -> list[Frame]:
        """Frames (without ids) to send after a reconnect, in order: joins, then watches.

        Rooms that delivered msgs without a join (a persona's inbox, ``collective:all``, a
        group it was invited to) are joined too, so their missed msgs are replayed. Rooms
        seen only through a watch get no replay, so their dedupe state is dropped: after a
        hub reset their seqs start over and must not be mistaken for duplicates.
        """
        for room in [r for r in self.last_seq if r not in self.joined and self._watch_covers(r)]:
            del self.last_seq[room]
        implicit = [r for r in self.last_seq if r not in self.joined]
        frames: list[Frame] = [
            {"t": "join", "room": room, "since": self.since_for(room)} for room in self.joined
        ]
        frames += [{"t": "join", "room": room, "since": self.last_seq[room]} for room in implicit]
        frames.extend({"t": "watch", "room": room} for room in sorted(self.watched))
        return frames
