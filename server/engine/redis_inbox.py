"""Which dm rooms a node must recover after its Pub/Sub connection came back. Pure: no I/O.

A node tracks the last seq it delivered of every room it delivered from (redis_fanout.py),
and after a reconnect reads each tracked room's stream past it. A dm room reached through an
inbox pattern that had never delivered on this node is not tracked: its first msg, published
while the connection was down, would wait for the room's next msg. So append.lua also logs
(room, seq) of each dm msg in both sides' inbox logs (`os1:inbox:{user:<id>}`, a stream whose
ids are Redis' clock, ms), and after a reconnect the node reads the logs of its local inboxes.

Which entries, exactly — on Redis' clock only, so node clocks do not matter:

- `since[user]`: the first whole millisecond after Redis' TIME read right after Redis
  confirmed the inbox subscription (log ids are in ms). A msg logged before it is old (the
  user connected later) or came in live: it is never recovered.
- After it, every msg of the user's dm rooms reached this node live, as long as the
  connection lived: then its room is tracked. So an entry after `since` of a room that is
  NOT tracked was missed; the room is caught up from (its first such seq - 1). Entries of
  tracked rooms add nothing: their streams are read past the last delivered seq anyway.
- Where to start reading: the later of `since` and "when the connection was last known
  alive" minus MARGIN_MS. That is an estimate (the session's start on Redis' clock plus the
  node's monotonic time from then to the last reply it read), kept early: it only saves
  reading entries (those between it and the loss are of tracked rooms, see above), and it
  must not pass the loss. MARGIN_MS covers reading a reply late and clock rates; a node
  stopped longer than that just as its connection died could still miss a new room.

Not covered: a room evicted from the tracked set (over `max_rooms`) counts as untracked,
so its msgs logged in the margin before the loss could be delivered twice; an inbox whose
subscription was confirmed but whose TIME read lost the race with a reconnect starts at
the next session.

Bounds: a log keeps about INBOX_LOG entries and expires INBOX_TTL_MS after its last write;
a recovery reads at most READ_LIMIT entries per user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MARGIN_MS = 5_000  # > lag between Redis writing a reply and the node reading it, + clock error
INBOX_LOG = 10_000  # entries kept per user (MAXLEN ~): the dm msgs of a long outage
INBOX_TTL_MS = 24 * 3600 * 1000  # a log idle this long is of no recovery's use
READ_LIMIT = 2 * INBOX_LOG  # MAXLEN ~ trims whole nodes: a log may hold a few more


class InboxClock:
    """When each local inbox was subscribed, and when Pub/Sub was last known alive, both in
    ms on Redis' clock. Times of the node itself are its event loop's (monotonic)."""

    def __init__(self) -> None:
        self.since: dict[str, int | None] = {}  # user -> TIME after its subscription; None: not yet
        self.lost_ms: int | None = None  # estimate of when the last session was lost
        self._session: tuple[int, float] | None = None  # (Redis ms, loop time) at its start
        self._alive = 0.0  # loop time of the last reply read from Redis in this session

    def want(self, user: str) -> None:
        self.since.setdefault(user, None)

    def drop(self, user: str) -> None:
        self.since.pop(user, None)

    def unknown(self, user: str) -> bool:
        """Wanted, but since when is not known yet (ask Redis' clock after the confirmation)."""
        return user in self.since and self.since[user] is None

    def subscribed(self, user: str, at_ms: int) -> None:
        """The inbox subscription of `user` was confirmed before `at_ms` (see `since`)."""
        if self.unknown(user):
            self.since[user] = at_ms

    def windows(self) -> dict[str, int]:
        """Per user with a known `since`: read its inbox log from this id (ms) on."""
        if self.lost_ms is None:
            return {}  # no session was up before this one: nothing could be missed
        floor = self.lost_ms - MARGIN_MS
        return {user: max(since, floor) for user, since in self.since.items() if since is not None}

    def up(self, at_ms: int, now: float) -> None:
        """A session is up and recovered; Redis' clock read `at_ms` at its start."""
        for user, since in self.since.items():
            if since is None:  # confirmed by this session's subscribe
                self.since[user] = at_ms
        self._session, self._alive = (at_ms, now), now

    def alive(self, now: float) -> None:
        self._alive = now

    def down(self) -> None:
        if self._session is not None:
            at_ms, start = self._session
            self.lost_ms = at_ms + round((self._alive - start) * 1000)
            self._session = None


def missed(entries: Iterable[tuple[str, int]], tracked: Mapping[str, int]) -> dict[str, int]:
    """From inbox log entries (room, seq): each untracked room and the seq to catch it up
    after (its lowest logged seq - 1; a room is in the logs of both its sides)."""
    found: dict[str, int] = {}
    for room, seq in entries:
        if room not in tracked and seq - 1 < found.get(room, seq):
            found[room] = seq - 1
    return found
