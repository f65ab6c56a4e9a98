"""MemoryEngine: the embedded, single-process engine. Nothing to install.

Every structure is bounded: a room keeps its last `history` messages; cid records expire
after `cid_ttl` and at most `max_cids` are kept per room (oldest dropped first).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from server.engine.base import Appended, Engine, Event, Page
from server.errors import Conflict


@dataclass
class _Log:
    msgs: deque[Event]
    seq: int = 0
    # (sender, cid) -> (expires_at, msg); insertion order == expiry order (fixed TTL)
    cids: OrderedDict[tuple[str, str], tuple[float, Event]] = field(default_factory=OrderedDict)


class MemoryEngine(Engine):
    name = "memory"

    def __init__(
        self,
        *,
        history: int = 1000,
        cid_ttl: float = 600.0,
        max_cids: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.history = history
        self.cid_ttl = cid_ttl
        self.max_cids = max_cids
        self.clock = clock
        self._logs: dict[str, _Log] = {}
        self._rooms: set[str] = set()
        self._members: dict[str, set[str]] = {}
        self._presence: dict[str, dict[str, set[str]]] = {}
        self._revoked: dict[str, int] = {}
        # (is the persona side, user) -> that user's dm rooms, least recently active first
        self._inboxes: dict[tuple[bool, str], OrderedDict[str, None]] = {}

    def _log(self, room: str) -> _Log:
        log = self._logs.get(room)
        if log is None:
            log = self._logs[room] = _Log(deque(maxlen=self.history))
        return log

    async def ready(self) -> bool:
        return True

    async def append(self, room: str, msg: Event, *, sender: str, cid: str | None) -> Appended:
        log = self._log(room)
        now = self.clock()
        if cid is not None:
            self._expire(log, now)
            hit = log.cids.get((sender, cid))
            if hit is not None:
                return self._duplicate(hit[1], msg)
        log.seq += 1
        stored = {**msg, "seq": log.seq, "mid": uuid.uuid4().hex}
        log.msgs.append(stored)
        if cid is not None:
            log.cids[(sender, cid)] = (now + self.cid_ttl, stored)
            if len(log.cids) > self.max_cids:
                log.cids.popitem(last=False)
        if room.startswith("dm:"):
            _, persona, human = room.split(":", 2)
            for key in ((True, persona), (False, human)):
                rooms = self._inboxes.setdefault(key, OrderedDict())
                rooms[room] = None
                rooms.move_to_end(room)
        self._emit(room, stored)
        return Appended(stored, duplicate=False)

    @staticmethod
    def _duplicate(original: Event, msg: Event) -> Appended:
        if original.get("text") != msg.get("text"):
            raise Conflict("this cid was already used in this room for a different text")
        return Appended(original, duplicate=True)

    @staticmethod
    def _expire(log: _Log, now: float) -> None:
        cids = log.cids
        while cids:
            key = next(iter(cids))
            if cids[key][0] > now:
                break
            del cids[key]

    async def inbox(self, user: str, *, persona: bool, limit: int) -> list[Event]:
        rooms = self._inboxes.get((persona, user), OrderedDict())
        out: list[Event] = []
        for room in reversed(rooms):
            if len(out) >= limit:
                break
            log = self._logs[room]
            out.append({"room": room, "seq": log.seq, "ts": log.msgs[-1]["ts"] if log.msgs else 0})
        return out

    async def publish(self, room: str, event: Event) -> None:
        self._emit(room, event)

    async def notify(self, user: str, event: Event) -> None:
        self._emit(f"user:{user}", event)

    async def read_after(self, room: str, after: int, limit: int) -> Page:
        log = self._logs.get(room)
        if log is None or not log.msgs:
            last = log.seq if log else 0
            return Page([], last + 1, last)
        first = log.msgs[0]["seq"]
        start = max(0, after + 1 - first)
        msgs = [log.msgs[i] for i in range(start, min(len(log.msgs), start + limit))]
        return Page(msgs, first, log.seq)

    async def read_before(self, room: str, before: int | None, limit: int) -> list[Event]:
        log = self._logs.get(room)
        if log is None or not log.msgs:
            return []
        first = log.msgs[0]["seq"]
        end = len(log.msgs) if before is None else max(0, min(len(log.msgs), before - first))
        return [log.msgs[i] for i in range(max(0, end - limit), end)]

    async def create_room(self, room: str) -> bool:
        if room in self._rooms:
            return False
        self._rooms.add(room)
        return True

    async def room_exists(self, room: str) -> bool:
        return room in self._rooms

    async def rooms(self, kind: str, limit: int) -> list[str]:
        prefix = kind + ":"
        return sorted(r for r in self._rooms if r.startswith(prefix))[:limit]

    async def add_member(self, room: str, user: str) -> None:
        self._members.setdefault(room, set()).add(user)

    async def remove_member(self, room: str, user: str) -> None:
        members = self._members.get(room)
        if members is not None:
            members.discard(user)

    async def is_member(self, room: str, user: str) -> bool:
        return user in self._members.get(room, ())

    async def members(self, room: str) -> list[str]:
        return sorted(self._members.get(room, ()))

    async def presence_add(self, room: str, user: str, node: str) -> bool:
        nodes = self._presence.setdefault(room, {}).setdefault(user, set())
        fresh = not nodes
        nodes.add(node)
        return fresh

    async def presence_remove(self, room: str, user: str, node: str) -> bool:
        users = self._presence.get(room)
        if users is None or user not in users:
            return False
        users[user].discard(node)
        if users[user]:
            return False
        del users[user]
        if not users:
            del self._presence[room]
        return True

    async def present(self, room: str) -> list[str]:
        return sorted(self._presence.get(room, ()))

    async def revoke(self, user: str, upto: int) -> None:
        self._revoked[user] = max(upto, self._revoked.get(user, 0))

    async def revoked_upto(self, user: str) -> int:
        return self._revoked.get(user, 0)
