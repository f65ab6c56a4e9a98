"""A persona worker: one hub connection, thousands of conversations.

The reader (one loop over the SDK's events) never waits on a conversation: it files each
message into its :class:`Conversation` and starts that conversation's task if none runs.
A task answers its conversation's messages one by one, in seq order, so a conversation is
ordered within itself and conversations proceed concurrently; a semaphore bounds how many
minds think at once. Replies stream as `delta` frames and end with one `send` whose `cid`
is derived from (room, seq answered): a retry after a reconnect or a restart is deduped by
the hub instead of posted twice. The last answered seq of each conversation is kept in the
memory store, and on start the worker rejoins every known conversation from there.

Several workers of one persona (on one node or many) share its conversations: each renews a
lease in the store every ``beat`` seconds and answers only the rooms the roster gives it
(personas.leases). When a worker leaves or its lease runs out, the survivors take over its
rooms from the last seq answered, so pending messages are answered — and a reply raced by
two workers is still posted once, by its cid.

Group rooms: invited, the persona joins (and rejoins after a start: the room's cursor is kept
in the store under the room id). There it answers only what addresses it — its name or id
as a word, or a reply to one of its messages — with the asker's memory; a group is one
conversation, answered in order like a dm.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import re
import time
import uuid
from collections import OrderedDict
from typing import Any

import structlog

from clients.connection import TokenSource
from clients.sdk import Client, ConnectionClosedError, RequestError, RequestTimeoutError
from personas.card import Card
from personas.collective.backchannel import Backchannel
from personas.conversation import MINE, Conversation, Pending
from personas.evolution import signals_of
from personas.evolver import Evolver
from personas.leases import COLLECTIVE, Roster
from personas.memory import Fact, MemoryStore, PersonMemory
from personas.minds.base import Message, Mind, MindInput, Turn
from personas.minds.prompt import CUT_OFF, trouble_line
from personas.pacer import Pacer
from personas.understand import Intent, Reading, read

log = structlog.get_logger("os1.persona")

FALLBACK = "Sorry — I lost my train of thought for a second. Could you say that again?"
SEND_ATTEMPTS = 4
CATCH_UP_PARALLEL = 32  # joins in flight while catching up after a start
INBOX_LIMIT = 1000  # rooms the hub lists on start (most recently active first)
STATUS_EVERY = 1.0  # seconds between checks whether the head count reported to the hub changed
LEASE_CALL = 2.0  # seconds a lease renewal (or the goodbye) may take before it counts as failed
GROUP = "group:"


class WorkerError(Exception):
    """The worker cannot run as configured (e.g. its token is for another persona)."""


def reply_cid(room: str, seq: int) -> str:
    """The cid (and stream id) of the reply to message ``seq`` of ``room``: stable across retries."""
    return "r-" + hashlib.blake2b(f"{room}#{seq}".encode(), digest_size=12).hexdigest()


def _answered(mine: PersonMemory, seq: int | None, stored: PersonMemory | None) -> PersonMemory:
    """The stored memory with this answer recorded: the cursor (dm rooms; None in a group,
    whose cursor is kept apart) and the question just asked. Deleted meanwhile: only the
    cursor is kept, so what was deleted is not written back."""
    memory = stored or PersonMemory(mine.person, name=mine.name)
    if seq is not None:
        memory.last_answered = max(memory.last_answered, seq)
    memory.asked, memory.asked_slots = mine.asked, mine.asked_slots
    memory.refresh_summary()
    return memory


def _cursor(room: str, seq: int, stored: PersonMemory | None) -> PersonMemory:
    """A group room's cursor, kept in the store under the room id (no person id has a colon)."""
    cursor = stored or PersonMemory(room)
    cursor.last_answered = max(cursor.last_answered, seq)
    return cursor


def mention_pattern(card: Card) -> re.Pattern[str]:
    """The persona's name or id as a word, case-insensitive ("Samantha, …", "@samantha")."""
    names = sorted({card.id, card.name}, key=len, reverse=True)
    return re.compile(r"(?<!\w)@?(?:" + "|".join(re.escape(n) for n in names if n) + r")(?!\w)", re.I)


class PersonaWorker:
    def __init__(self, card: Card, url: str, token: TokenSource, *, mind: Mind, store: MemoryStore,
                 max_thinking: int = 64, queue_limit: int = 16, active_window: float = 900.0,
                 max_conversations: int = 100_000, mind_timeout: float = 20.0,
                 evolve_every: float = 5.0, client_options: dict[str, Any] | None = None,
                 collective: Backchannel | None = None, worker_id: str | None = None,
                 lease: float = 5.0, beat: float = 1.0) -> None:
        if not 0 < beat < lease:
            raise ValueError(f"the lease ({lease:g} s) must outlast the beat that renews it ({beat:g} s)")
        self.card, self.url, self.token = card, url, token
        self.worker_id = worker_id or f"{card.id}-{uuid.uuid4().hex[:12]}"
        self.lease, self.beat = lease, beat
        self.roster = Roster(self.worker_id)  # owns nothing until the first renewal
        self.collective = collective  # None: this persona stays out of the collective
        self._leading = False  # this worker speaks for the persona in the collective now
        self._collective_tasks: set[asyncio.Task[None]] = set()
        self.mind, self.store = mind, store
        self.queue_limit, self.active_window = queue_limit, active_window
        self.max_conversations, self.mind_timeout = max_conversations, mind_timeout
        self.client_options = {"max_events": 50_000, **(client_options or {})}
        self.conversations: OrderedDict[str, Conversation] = OrderedDict()
        self.ready = asyncio.Event()
        self.stats = {"answered": 0, "mind_failures": 0, "send_failures": 0, "merged": 0, "deduped": 0}
        self._thinking = asyncio.Semaphore(max_thinking)
        self._busy_at = max_thinking  # more conversations than minds at work: stream coarser
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}  # room -> its answering task
        self._client: Client | None = None
        self._pacer = Pacer(float("inf"), float("inf"))
        self._prefix = f"dm:{card.id}:"
        self._log = log.bind(persona=card.id)
        self._active: OrderedDict[str, float] = OrderedDict()  # room -> last message, oldest first
        self._reported: int | None = None  # head count last reported to the hub (`status`)
        self.evolver = Evolver(card, store, every=evolve_every)
        self._mention = mention_pattern(card)
        self._groups: set[str] = set()  # group rooms joined (or joining) on this connection

    # -- lifecycle ----------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, catch up, answer until cancelled or the hub closes for good."""
        client = Client(self.url, self.token, **self.client_options)
        await client.connect()
        self._client = client
        self._groups.clear()
        try:
            self._check_identity(client)
            self._pacer = Pacer.from_welcome(client.welcome)
            await self.evolver.load()
            await self._renew()
            self.ready.set()
            self._log.info("persona_online", mind=self.mind.name, worker=self.worker_id,
                           workers=len(self.roster.loads))
            self._spawn(self._catch_up())
            self._spawn(self._keep_lease())
            self._spawn(self._report_status())
            self._spawn(self.evolver.run())
            self._lead_collective()
            for conv in list(self.conversations.values()):
                self._kick(conv)  # after a restart of this worker: what was interrupted
            async for event in client:
                self._on_event(event)
            raise client.closed or ConnectionClosedError(None, "ended")
        finally:
            self.ready.clear()
            self._leading = False
            await self._stop_tasks()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.evolver.flush()  # the last batch of signals survives a restart
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(LEASE_CALL):  # the others take over now, not in a lease
                    await self.store.roster(self.card.id, self.worker_id, 0)
            self.roster = Roster(self.worker_id)
            self._client = None
            await client.close()

    def _check_identity(self, client: Client) -> None:
        me = client.me or {}
        if me.get("id") != self.card.id or me.get("role") != "persona":
            raise WorkerError(f"token is for {me.get('role')} {me.get('id')!r}, "
                              f"not persona {self.card.id!r}: mint one with sub={self.card.id}")

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._running.clear()

    # -- what the worker knows --------------------------------------------------------------
    def conversations_now(self) -> int:
        """People who wrote to this worker within the active window.

        Exact and amortised O(1) — every answer asks, so a walk over thousands of
        conversations each time would make answering quadratic.
        """
        since = time.monotonic() - self.active_window
        while self._active and next(iter(self._active.values())) < since:
            self._active.popitem(last=False)
        return len(self._active)

    def head_count(self) -> int:
        """The honest answer to "how many people are you talking with?": this worker's
        conversations and those the persona's other workers reported at their last beat."""
        return self.conversations_now() + self.roster.others_load()

    def _conversation(self, room: str) -> Conversation:
        conv = self.conversations.get(room)
        if conv is None:
            # A group's "person" is the room: the key of its cursor in the store.
            person = room if room.startswith(GROUP) else room[len(self._prefix):]
            conv = Conversation(room, person, limit=self.queue_limit)
            self.conversations[room] = conv
            self._evict()
        return conv

    def _evict(self) -> None:
        # Idle conversations are cheap to rebuild (their cursor is in the store): drop the
        # least recently active ones past the bound, never one with work in flight.
        while len(self.conversations) > self.max_conversations:
            room, conv = next(iter(self.conversations.items()))
            if room in self._running or not conv.idle:
                break
            del self.conversations[room]

    # -- reading the hub ----------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        if self._leading and self.collective is not None:
            self.collective.on_event(event)  # collective rooms and invitations; ignores the rest
        kind = event.get("t")
        if kind == "msg":
            self._on_msg(event)
        elif kind == "invited" and isinstance(event.get("room"), str) and event["room"].startswith(GROUP):
            self._join_group(event["room"])
        elif kind in ("reconnecting", "reconnected"):
            self._log.info(kind, attempt=event.get("attempt"), code=event.get("code"))
            self._reported = None  # a new connection: the hub knows nothing of us yet

    def _on_msg(self, event: dict[str, Any]) -> None:
        room, seq, sender = event.get("room"), event.get("seq"), event.get("from") or {}
        if not isinstance(room, str) or not isinstance(seq, int):
            return
        group = room.startswith(GROUP)
        if not group and not room.startswith(self._prefix):
            return  # collective rooms went to self.collective above
        conv = self._conversation(room)
        own = sender.get("id") == self.card.id
        mine = self.roster.owns(room)  # another worker's room: only noted as seen
        text = str(event.get("text", ""))
        check, skip = 0, own or not mine
        if group and own:
            conv.mine_add(seq)
        elif group and mine:
            addressed, check = self._addressed(conv, text, event.get("reply_to"), sender)
            skip = not (addressed or check)
        person = str(sender.get("id", "")) if group else conv.person
        item = Pending(seq, str(event.get("mid", "")), text, str(sender.get("name", "")),
                       int(event.get("ts", 0) or 0), person=person, check=check)
        merges = conv.merges
        if conv.offer(item, own=skip):
            conv.last_active = self._active[room] = time.monotonic()
            self._active.move_to_end(room)
            self.conversations.move_to_end(room)
        self.stats["merged"] += conv.merges - merges
        self._kick(conv)

    def _addressed(self, conv: Conversation, text: str, reply_to: Any,
                   sender: dict[str, Any]) -> tuple[bool, int]:
        """Is a group message for this persona? (yes/no, or the seq to look up to know).

        Its name or id as a word, or a reply to one of its messages. Another persona's reply
        never is: two personas naming each other in their replies would talk forever.
        """
        persona = sender.get("role") == "persona"
        if persona and reply_to is not None:
            return False, 0
        if self._mention.search(text):
            return True, 0
        if persona or not isinstance(reply_to, int) or isinstance(reply_to, bool) or reply_to < 1:
            return False, 0
        if reply_to in conv.mine:
            return True, 0
        if reply_to > conv.known_after and (len(conv.mine) < MINE or reply_to > min(conv.mine)):
            return False, 0  # seen on this connection, and not ours
        return False, reply_to  # from before we were here: looked up in turn

    async def _is_mine(self, room: str, seq: int) -> bool:
        try:
            found = await self._client_or_raise().history(room, before=seq + 1, limit=1)
        except (RequestError, RequestTimeoutError) as exc:
            self._log.warning("lookup_failed", room=room, seq=seq, error=str(exc))
            return False
        return any(m.get("seq") == seq and (m.get("from") or {}).get("id") == self.card.id for m in found)

    def _join_group(self, room: str) -> None:
        """Invited (or known from the store): join from the last seq answered there."""
        if room not in self._groups:
            self._groups.add(room)
            self._spawn(self._rejoin_group(room))

    async def _rejoin_group(self, room: str) -> None:
        cursor = await self.store.update(self.card.id, room, functools.partial(_cursor, room, 0))
        await self._rejoin(room, cursor.last_answered if cursor is not None else 0)

    def _kick(self, conv: Conversation) -> None:
        if conv.room not in self._running and conv.ready:
            self._running[conv.room] = self._spawn(self._drain(conv))

    async def _report_status(self) -> None:
        """Tell the hub how many conversations this worker holds (GET /api/personas sums it)."""
        client = self._client_or_raise()
        self._reported = None
        while True:
            count = self.conversations_now()
            if count != self._reported:
                await self._pacer.take()
                try:
                    await client.request({"t": "status", "conversations": count, "mind": self.mind.name})
                    self._reported = count
                except RequestError as exc:  # a hub without `status`: nothing to report to
                    self._log.info("status_unsupported", error=str(exc))
                    return
                except (RequestTimeoutError, ConnectionClosedError):
                    pass  # retried on the next round, on the resumed connection
            await asyncio.sleep(STATUS_EVERY)

    # -- sharing the persona's conversations with its other workers ------------------------------
    async def _renew(self) -> Roster:
        """Renew this worker's lease; the roster it returns says which rooms are ours."""
        before = self.roster
        async with asyncio.timeout(LEASE_CALL):
            loads = await self.store.roster(self.card.id, self.worker_id, self.lease,
                                            self.conversations_now())
        self.roster = Roster(self.worker_id, loads)
        return before

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            try:
                before = await self._renew()
            except (ConnectionError, TimeoutError) as exc:
                # Past our lease the others take our rooms; we keep answering meanwhile (a
                # reply both post is deduped by its cid) rather than leave people waiting.
                self._log.warning("lease_renewal_failed", error=str(exc))
                continue
            if before.workers != self.roster.workers:
                self._log.info("workers_changed", workers=len(self.roster.loads))
                for conv in self.conversations.values():
                    if conv.queue and not self.roster.owns(conv.room):
                        conv.queue.clear()  # its new owner answers it from the stored cursor
                self._spawn(self._catch_up(before))
                self._lead_collective()

    def _lead_collective(self) -> None:
        """One worker of a persona speaks for it in the collective: the one the roster gives
        the collective to. Start or stop this worker's part there as the roster changes."""
        if self.collective is None or self._client is None:
            return
        leads = self.roster.owns(COLLECTIVE)
        if leads and not self._leading:
            self.collective.start(self._client, self._pacer, self._spawn_collective)
        elif not leads and self._leading:
            for task in list(self._collective_tasks):
                task.cancel()
        self._leading = leads

    def _spawn_collective(self, coro: Any) -> asyncio.Task[None]:
        task = self._spawn(coro)
        self._collective_tasks.add(task)
        task.add_done_callback(self._collective_tasks.discard)
        return task

    async def _catch_up(self, before: Roster | None = None) -> None:
        """Rejoin, from the last seq answered, the conversations this worker holds: all known
        to the store on start (``before`` None), or those it just gained from ``before``."""
        people = await self.store.list(self.card.id)
        rooms = {p if p.startswith(GROUP) else self._prefix + p for p in people}
        if before is not None:  # and those seen live: a first message may have no memory yet
            rooms = set(self.roster.gained(before, rooms | set(self.conversations)))
        limit = asyncio.Semaphore(CATCH_UP_PARALLEL)

        async def one(room: str) -> None:
            group = room.startswith(GROUP)
            if group and before is None:
                self._join_group(room)  # a group room's cursor: rejoin it (every worker joins)
                return
            if not self.roster.owns(room):
                return
            async with limit:
                stored = await self.store.get(self.card.id, room if group else room[len(self._prefix):])
                cursor = stored.last_answered if stored is not None else 0
                conv = self.conversations.get(room)
                if before is not None and conv is not None and conv.seen <= cursor:
                    return  # its last owner answered everything we saw arrive
                await self._rejoin(room, cursor)

        await asyncio.gather(*(one(r) for r in rooms))
        if rooms:
            self._log.info("caught_up", conversations=len(rooms), took_over=before is not None)
        if before is None:
            await self._catch_up_unknown(rooms, limit)

    async def _catch_up_unknown(self, known: set[str], limit: asyncio.Semaphore) -> None:
        """Conversations the store has no record of (a fresh store, or a first message that
        came while no worker ran): the hub lists the persona's recently active dm rooms, and
        the room itself says what was answered — the reply_to of the persona's newest reply."""
        client = self._client_or_raise()
        try:
            listed = await client.inbox(limit=INBOX_LIMIT)
        except RequestError as exc:  # a hub without `inbox`: the store is all we know
            self._log.info("inbox_unsupported", error=str(exc))
            return
        except RequestTimeoutError:
            return

        async def one(room: str, seq: int) -> None:
            async with limit:
                cursor = await self._answered_in(room, seq)
                if cursor < seq:
                    await self._rejoin(room, cursor)

        todo = [(e["room"], e["seq"]) for e in listed
                if isinstance(e, dict) and isinstance(e.get("room"), str) and isinstance(e.get("seq"), int)
                and e["room"].startswith(self._prefix) and e["room"] not in known
                and self.roster.owns(e["room"])]
        await asyncio.gather(*(one(room, seq) for room, seq in todo))
        if todo:
            self._log.info("caught_up_from_hub", conversations=len(todo))

    async def _answered_in(self, room: str, latest: int) -> int:
        """The last seq of ``room`` this persona answered, read from its recent history."""
        try:
            msgs = await self._client_or_raise().history(room, limit=50)
        except (RequestError, RequestTimeoutError) as exc:
            self._log.warning("lookup_failed", room=room, error=str(exc))
            return latest  # unknown: better silent than answering all over again
        mine = [m for m in msgs if (m.get("from") or {}).get("id") == self.card.id]
        if msgs and mine and mine[-1] is msgs[-1]:
            return latest  # the room ends with our reply
        answered = [m["reply_to"] for m in mine if isinstance(m.get("reply_to"), int)]
        if answered:
            return int(max(answered))
        first = msgs[0].get("seq", 1) if msgs else latest + 1
        return max(0, int(first) - 1)  # nothing of ours in view: answer what is in view

    async def _rejoin(self, room: str, since: int) -> None:
        client = self._client_or_raise()
        conv = self._conversation(room)
        conv.hold(since)
        await self._pacer.take()
        try:
            joined = await client.join(room, since=since)
            latest = joined.get("seq")
            history = ((client.welcome or {}).get("server") or {}).get("history")
            conv.release_at(latest if isinstance(latest, int) else 0,
                            retained=history if joined.get("gap") and isinstance(history, int) else None)
        except (RequestError, RequestTimeoutError) as exc:
            self._log.warning("rejoin_failed", room=room, error=str(exc))
            conv.release_at(0)
        self._kick(conv)

    # -- answering --------------------------------------------------------------------------
    async def _drain(self, conv: Conversation) -> None:
        try:
            while (item := conv.next()) is not None:
                if not self.roster.owns(conv.room):
                    conv.queue.clear()  # moved to another worker, which answers from the cursor
                    break
                try:
                    await self._answer(conv, item)
                except (ConnectionClosedError, asyncio.CancelledError):
                    conv.queue.insert(0, item)  # answered after the restart instead
                    raise
                except Exception:
                    self._log.exception("answer_failed", room=conv.room, seq=item.seq)
        finally:
            self._running.pop(conv.room, None)

    async def _answer(self, conv: Conversation, item: Pending) -> None:
        group = conv.room.startswith(GROUP)
        if item.check and not await self._is_mine(conv.room, item.check):
            return  # a reply to someone else's message
        person = item.person if group else conv.person  # memory is per person, in a group too
        cursor = await self.store.get(self.card.id, conv.person)  # dm rooms: the person's memory
        memory = (cursor if not group else await self.store.get(self.card.id, person)) or PersonMemory(
            person, name=item.name, first_ts=item.ts)
        if item.seq <= (cursor.last_answered if cursor is not None else 0):
            conv.answered(item.seq)
            self.stats["deduped"] += 1
            return
        reading = read(item.text, memory.asked)
        learned, forgotten = self._apply(memory, reading, item)
        await self.store.put(self.card.id, memory)  # forgetting is real before we say so
        if memory.forgets != conv.forgets.get(person, 0):  # here or through REST: forgotten
            conv.turns.clear()  # words must not come back through the recent turns either
            conv.forgets[person] = memory.forgets
        stream = reply_cid(conv.room, item.seq)
        if not self._busy() and self._pacer.try_take():
            await self._client_or_raise().typing(conv.room)
        consulted = None
        if self._leading and self.collective is not None:  # bounded wait: others may know
            consulted = await self.collective.consult(person, memory, reading, item.text)
            reading = consulted.reading if consulted is not None else reading
        inp = MindInput(self.card, memory, tuple(conv.turns),
                        Message(item.text, item.seq, item.mid, person, conv.room),
                        reading, learned, forgotten, self.head_count(), traits=self.evolver.traits)
        text = await self._think(inp, stream, lead=consulted.line if consulted is not None else "")
        ack = await self._post(conv.room, text, stream, item.seq)
        # Re-read, not put: a forget through REST while the mind thought must stay forgotten.
        await self.store.update(self.card.id, person,
                                functools.partial(_answered, memory, None if group else item.seq))
        if group:
            await self.store.update(self.card.id, conv.room, functools.partial(_cursor, conv.room, item.seq))
            if ack is not None and isinstance(ack.get("seq"), int):
                conv.mine_add(ack["seq"])
        conv.answered(item.seq)
        conv.turns.extend([Turn("person", item.text, item.seq),
                           Turn("persona", text, int((ack or {}).get("seq", item.seq)))])
        self.stats["answered"] += 1

    def _apply(self, memory: PersonMemory, reading: Reading, item: Pending) -> tuple[list[Fact], list[Fact]]:
        memory.turns += item.merged
        memory.name = item.name or memory.name
        memory.last_ts = item.ts
        if reading.intent is Intent.FORGET_ALL:
            return [], memory.forget_all()
        if reading.intent is Intent.FORGET:
            return [], memory.forget(reading.target)
        learned = memory.learn(reading.facts, item.seq, item.mid, item.ts)
        memory.feel(reading.sentiment, reading.feeling, item.seq, item.ts)
        memory.note_topics(reading.topics)
        self.evolver.note(signals_of(item.text, reading, len(learned)))
        return learned, []

    async def _think(self, inp: MindInput, stream: str, lead: str = "") -> str:
        """The mind's reply, streamed; ``lead`` (what the collective said) comes first."""
        client, room = self._client_or_raise(), inp.message.room
        parts: list[str] = [lead + " "] if lead else []
        unsent = "".join(parts)
        async with self._thinking:  # the wait for a turn is not the mind's time
            try:
                async with asyncio.timeout(self.mind_timeout):
                    async for chunk in self.mind.reply(inp):
                        parts.append(chunk)
                        unsent += chunk
                        # Busy: nothing streams — each delta is a frame in and one out to the
                        # person, and the final msg carries the whole text moments later.
                        if not self._busy() and self._pacer.try_take():
                            await client.delta(room, stream, unsent)
                            unsent = ""
            except (TimeoutError, Exception) as exc:  # a mind never leaves a person unanswered
                self.stats["mind_failures"] += 1
                self._log.warning("mind_failed", room=room, error=repr(exc))
                said = "".join(parts).strip()
                if said:  # the final msg must carry what the deltas already showed
                    return f"{said} {CUT_OFF}"
                return trouble_line(inp.card, inp.memory.known_name, inp.message.seq)
        text = "".join(parts).strip()
        limit = ((client.welcome or {}).get("server") or {}).get("max_text", 16384)
        return text[:limit] if text else FALLBACK

    async def _post(self, room: str, text: str, stream: str, seq: int) -> dict[str, Any] | None:
        client = self._client_or_raise()
        for attempt in range(SEND_ATTEMPTS):
            await self._pacer.take()
            try:
                return await client.send(room, text, cid=stream, stream=stream, reply_to=seq)
            except RequestError as exc:
                if exc.code == "conflict":
                    return None  # an earlier attempt already answered this message
                if exc.code not in ("rate_limited", "unavailable"):
                    raise
            except RequestTimeoutError:
                pass  # the same cid is safe to send again
            await asyncio.sleep(0.1 * 2**attempt)
        self.stats["send_failures"] += 1
        raise WorkerError(f"could not answer {room}#{seq} after {SEND_ATTEMPTS} attempts")

    def _busy(self) -> bool:
        return len(self._running) > self._busy_at

    def _client_or_raise(self) -> Client:
        if self._client is None:
            raise ConnectionClosedError(None, "worker is not connected")
        return self._client
