"""One persona's side of the collective: the I/O around the pure parts.

The worker hands every event to :meth:`Backchannel.on_event` (it keeps collective msgs,
``invited`` and presence in ``collective:all``) and calls :meth:`Backchannel.consult` while
answering a person. Two rules hold for everything posted here:

- it goes through :meth:`Backchannel.say`, which asks the runtime's shared
  :class:`~personas.collective.guards.Guards` first (and logs what they refuse);
- if it is made from conversation material (a consultation, a reflection), it is built from
  a :class:`~personas.collective.consent.Shareable` that :func:`release` returned for that
  person's consent — raw conversation text never reaches :mod:`speech`.

Threads end naturally (the opener thanks and leaves) or when a guard closes them; rooms whose
threads are all closed are left by the periodic sweep. A guard that stops a thread or holds
a turn for the budget is announced in the room by one note (:mod:`.notes`), so observers see
it; the runtime's :class:`~personas.collective.meter.Meter`, if any, counts turns and guards.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
import zlib
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from clients.sdk import Client, ConnectionLostError, RequestError, RequestTimeoutError
from personas.card import Card
from personas.collective import notes, speech
from personas.collective.budget import SharedBudget
from personas.collective.config import CollectiveConfig
from personas.collective.consent import merge, names_of, release
from personas.collective.consult import Consultant, Consulted
from personas.collective.guards import THREAD_GUARDS, Guards, Thread, Verdict
from personas.collective.meter import Meter
from personas.collective.policy import Incoming, NaturalPolicy, Policy, Utterance, View
from personas.collective.topics import vocabulary
from personas.memory import MemoryStore, PersonMemory
from personas.pacer import Pacer
from personas.understand import Intent, Reading

log = structlog.get_logger("os1.collective")

ALL = "collective:all"
INVITE_BACKLOG = 20  # messages read back when invited: the question is among the last few
MATERIAL = 64  # recent conversation topics kept for the next reflection
MINE = 256  # threads this persona opened, remembered for the policy
WELCOMED = 1024  # peers remembered as welcomed; past it, those outside the period are forgotten
SEEN = 2048  # (room, seq) already handled, for dedupe of history against live delivery
CHATTER = frozenset({"greet", "welcome", "reflect", "reply"})  # turns nobody is waiting for
OS1Failure = (RequestError, RequestTimeoutError, ConnectionLostError)  # transient: give up quietly

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class Commons:
    """What the personas of one runtime share: config, cards (who knows what), guards, the
    guard notes already claimed, and an optional meter (``os1 serve``: its /metrics)."""

    def __init__(self, config: CollectiveConfig, cards: Iterable[Card], *,
                 meter: Meter | None = None) -> None:
        self.config = config
        self.cards = {c.id: c for c in cards}
        self.vocabulary = vocabulary(self.cards.values())
        names = [n for c in self.cards.values() for n in (c.id, *c.name.split())]
        self.guards = Guards(config.guards, names)
        self.notes = notes.Notes(config.guards.budget_window)
        self.meter = meter


@dataclass
class _Room:
    joined: float
    threads: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Material:
    person: str
    names: tuple[str, ...]
    topics: tuple[str, ...]


class Backchannel:
    def __init__(self, card: Card, commons: Commons, store: MemoryStore, *, mind: object = None,
                 policy: Policy | None = None) -> None:
        self.card, self.commons, self.store, self.mind = card, commons, store, mind
        self.config, self.guards = commons.config, commons.guards
        # Several runtimes (hub nodes) on one Redis: the budget is counted there too.
        self.shared = SharedBudget(store, commons.config.guards) if store.shared else None
        self.policy = policy or NaturalPolicy()
        seed = commons.config.seed
        # Per persona, so two personas with one seed do not make the same choices.
        self.rng = random.Random(None if seed is None else seed * 1_000_003 + zlib.crc32(card.id.encode()))
        self.online: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.client: Client | None = None
        self.pacer = Pacer(float("inf"), float("inf"))
        self._spawner: Spawn | None = None
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.consultant = Consultant(self)
        self._mine: OrderedDict[str, str] = OrderedDict()
        self._closing: OrderedDict[str, None] = OrderedDict()  # threads this persona is closing
        self._rooms: dict[str, _Room] = {}
        self._material: deque[_Material] = deque(maxlen=MATERIAL)
        self._welcomed: dict[str, float] = {}
        self._greeted_at: float | None = None
        self._responding = 0
        self._noting: Counter[str] = Counter()  # room -> guard notes being posted there
        self._log = log.bind(persona=card.id)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, client: Client, pacer: Pacer, spawn: Spawn) -> None:
        """Called by the worker once online; ``spawn`` ties our tasks to the worker's life."""
        self.client, self.pacer, self._spawner = client, pacer, spawn
        self._rooms.clear()  # a new connection: rooms joined on the old one are resumed by the SDK
        spawn(self._run())

    async def _run(self) -> None:
        await self._refresh_online()
        if self.config.greet:
            self.spawn(self._greet_soon())
        if self.config.reflect:
            self.spawn(self._reflect_loop())
        while True:
            await asyncio.sleep(self.config.sweep_every)
            self.guards.sweep(self.now())
            for room in list(self._rooms):
                await self.leave_if_done(room)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._spawner is None:
            coro.close()
            return
        self._spawner(coro)

    async def _refresh_online(self) -> None:
        client = self.client
        if client is None:
            return
        try:
            await self.pacer.take()
            joined = await client.join(ALL)
        except OS1Failure as exc:
            self._log.warning("collective_join_failed", room=ALL, error=str(exc))
            return
        members = joined.get("members")
        self.online = {m for m in members if isinstance(m, str)} - {self.card.id} \
            if isinstance(members, list) else set()

    # -- events ---------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        kind, room = event.get("t"), event.get("room")
        if kind == "msg" and isinstance(room, str) and room.startswith("collective:"):
            self._on_msg(event)
        elif kind == "invited" and isinstance(room, str) and room.startswith("collective:") and room != ALL:
            self.spawn(self._accept_invite(room))
        elif kind == "presence" and room == ALL:
            self.online |= {p for p in event.get("joined") or () if isinstance(p, str)}
            self.online -= {p for p in event.get("left") or () if isinstance(p, str)}
            self.online.discard(self.card.id)
        elif kind == "reconnected":
            self.spawn(self._refresh_online())

    def _on_msg(self, event: dict[str, Any]) -> None:
        msg = Incoming.parse(event)
        if msg is None or (msg.room, msg.seq) in self._seen:
            return
        self._seen[(msg.room, msg.seq)] = None
        if len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        now = self.now()
        if msg.kind == "guard":  # a note, not a turn: close what it names, never answer it
            self.commons.notes.seen(msg.thread, msg.guard, now)
            if msg.guard in THREAD_GUARDS:
                self.guards.close(msg.thread, msg.guard)
            return
        self.guards.observe(msg.thread, msg.room, msg.seq, msg.sender, msg.cid, msg.text, now)
        if msg.room in self._rooms:
            self._rooms[msg.room].threads.add(msg.thread)
        if msg.kind == "close":
            self.guards.close(msg.thread, "done")
        if msg.sender == self.card.id:
            return
        if self.consultant.take_answer(msg.thread, msg.kind, msg.sender, msg.sender_name, msg.text):
            return
        if not self.guards.is_open(msg.thread) or self._stale(msg):
            return
        last = self._welcomed.get(msg.sender)
        view = View(self.card, self.commons.cards, self.config, self.rng, self._mine.get(msg.thread, ""),
                    last is not None and now - last < self.config.welcome_period)
        utterance = self.policy.respond(msg, view)
        if utterance is None:
            return
        if utterance.kind == "welcome":
            self._welcomed[msg.sender] = now  # decided: a second greeting now gets no second welcome
            if len(self._welcomed) > WELCOMED:
                period = self.config.welcome_period
                self._welcomed = {p: t for p, t in self._welcomed.items() if now - t < period}
        if utterance.kind == "close":
            if msg.thread in self._closing:
                return  # two replies came at once: one thank-you closes the thread
            self._closing[msg.thread] = None
            while len(self._closing) > MINE:
                self._closing.popitem(last=False)
        if self._responding >= self.config.max_responding:
            self.stats["dropped"] += 1
            return
        self._responding += 1
        self.spawn(self._respond(msg, utterance))

    def _stale(self, msg: Incoming) -> bool:
        return bool(msg.ts) and time.time() * 1000 - msg.ts > self.config.stale_after * 1000

    async def _accept_invite(self, room: str) -> None:
        """Join, then read back: the question was posted before the invitation was sent."""
        client = self.client
        if client is None:
            return
        try:
            await self.pacer.take()
            joined = await client.join(room)
            self._rooms.setdefault(room, _Room(self.now()))
            latest = joined.get("seq")
            await self.pacer.take()
            backlog = await client.history(room, before=(latest if isinstance(latest, int) else 0) + 1,
                                           limit=INVITE_BACKLOG)
        except OS1Failure as exc:
            self._log.warning("collective_invite_failed", room=room, error=str(exc))
            return
        for msg in backlog:
            self._on_msg(msg)

    # -- speaking -------------------------------------------------------------------------
    async def _respond(self, msg: Incoming, utterance: Utterance) -> None:
        try:
            await self.think()
            text = await self._mind_text(utterance)
            # Asked directly (or closing one's own thread): worth a short wait for a cooldown.
            patience = self.config.answer_patience if utterance.kind in ("answer", "close") else 0.0
            await self.say(msg.room, msg.thread, utterance.kind, text, reply_to=msg.seq,
                           topic=utterance.topic, patience=patience)
        finally:
            self._responding -= 1

    async def _mind_text(self, utterance: Utterance) -> str:
        mind, prompt = self.mind, utterance.prompt
        if prompt is None or not isinstance(mind, speech.CollectiveMind):
            return utterance.text
        try:
            async with asyncio.timeout(self.config.consult_wait):
                return (await mind.collective_reply(self.card, prompt)).strip() or utterance.text
        except Exception as exc:  # a mind that cannot answer leaves the reflex line
            self._log.warning("collective_mind_failed", error=repr(exc))
            return utterance.text

    async def say(self, room: str, thread: str, kind: str, text: str, *, reply_to: int | None = None,
                  topic: str = "", topics: Sequence[str] = (), to: Sequence[str] = (),
                  patience: float = 0.0) -> dict[str, Any] | None:
        """Post one collective turn if the guards admit it (waiting up to ``patience`` for a
        cooldown, rate or budget to pass); the hub's ack, or None when held or failed."""
        client = self.client
        if client is None:
            return None
        text = text[:self._max_text()]
        cid = "c-" + uuid.uuid4().hex[:24]
        verdict = await self._admit(room, thread, kind, text, cid, patience)
        if verdict is None:
            return None
        meta: dict[str, Any] = {"thread": thread, "kind": kind, "turn": verdict.turn,
                                "max_turns": self.config.guards.max_turns}
        for key, value in (("topic", topic), ("topics", list(topics)), ("to", list(to))):
            if value:
                meta[key] = value
        await self.pacer.take()
        try:
            ack = await client.send(room, text, cid=cid, reply_to=reply_to, meta=meta)
        except OS1Failure as exc:
            self.stats["send_failed"] += 1
            self._log.warning("collective_send_failed", room=room, thread=thread, error=str(exc))
            return None
        self.stats[kind] += 1
        if self.commons.meter is not None:
            self.commons.meter.turn(kind)
        self._log.info("collective_said", room=room, thread=thread, kind=kind, turn=verdict.turn,
                       seq=ack.get("seq"))
        return ack

    async def _admit(self, room: str, thread: str, kind: str, text: str, cid: str,
                     patience: float) -> Verdict | None:
        deadline = self.now() + patience
        while True:
            verdict = await self._verdict(room, thread, kind, text, cid)
            if verdict.ok:
                return verdict
            if verdict.guard == "closed" and self._expired(thread):
                # The sweep closed it for its duration before anyone spoke: this turn is the
                # first one that guard stops (a quiet thread that just ran out is no event).
                verdict = Verdict(False, "max_duration")
                self.guards.refused(self.card.id, verdict.guard)
            # "closed" is no guard firing, only a late voice in a finished thread.
            fired = verdict.guard != "closed"
            (self._log.info if fired else self._log.debug)(
                "collective_guard", guard=verdict.guard, room=room, thread=thread, kind=kind,
                retry_after=round(verdict.retry_after, 3))
            if fired and self.commons.meter is not None:
                self.commons.meter.guard(verdict.guard)
            if not fired or verdict.closes or self.now() + verdict.retry_after > deadline:
                if fired:
                    self._note(room, thread, verdict)
                return None
            await asyncio.sleep(verdict.retry_after)

    async def _verdict(self, room: str, thread: str, kind: str, text: str, cid: str) -> Verdict:
        chatter, last = kind in CHATTER, kind == "close"

        def admit(dry: bool = False) -> Verdict:
            return self.guards.admit(self.card.id, thread, room, text, cid, self.now(),
                                     chatter=chatter, last=last, dry=dry)

        # Only a turn the local guards would pass takes a place in the shared budget.
        if self.shared is None or not admit(dry=True).ok:
            return admit()
        held = await self.shared.take(cid, self.guards.budget_limit(chatter))
        if held is not None:
            self.guards.refused(self.card.id, "budget")
            return held
        verdict = admit()
        if not verdict.ok:  # another of our personas spoke in between: the place is not used
            await self.shared.give_back(cid)
        return verdict

    def _expired(self, thread: str) -> bool:
        state = self.guards.threads.get(thread)
        return state is not None and state.closed == "max_duration" \
            and not self.commons.notes.noted(thread, "max_duration")

    def _note(self, room: str, thread: str, verdict: Verdict) -> None:
        """Announce a guard event in the room, once per (thread, guard) for the runtime."""
        if self._spawner is None or not self.commons.notes.claim(thread, verdict.guard, self.now()):
            return
        self._noting[room] += 1  # the sweep does not leave the room under the note
        self.spawn(self._post_note(room, thread, verdict))

    async def _post_note(self, room: str, thread: str, verdict: Verdict) -> None:
        try:
            client, c = self.client, self.config.guards
            if client is None:
                return
            state = self.guards.threads.get(thread) or Thread(thread, room, self.now())  # forgotten: 0 turns
            meta = notes.meta(verdict, state, c)
            await self.pacer.take()  # not a turn, but still within the connection's rate
            await client.send(room, notes.text(verdict, c)[:self._max_text()],
                              cid=notes.cid(thread, verdict.guard), meta=meta)
            self.stats["guard_notes"] += 1
            self._log.info("collective_guard_note", room=room, thread=thread, guard=verdict.guard)
        except OS1Failure as exc:
            self._log.info("collective_guard_note_failed", room=room, thread=thread, error=str(exc))
        finally:
            self._noting[room] -= 1
            if self._noting[room] <= 0:
                del self._noting[room]

    # -- consultation ---------------------------------------------------------------------
    async def consult(self, person: str, memory: PersonMemory | None, reading: Reading,
                      text: str) -> Consulted | None:
        """While answering ``person``: if their message is about a topic outside this
        persona's expertise that an online peer knows, ask the peer (within consent), wait at
        most ``consult_wait`` and return what to tell the person. None: answer alone."""
        if reading.topics:
            self._material.append(_Material(person, names_of(memory, person), reading.topics))
        c = self.config
        chances = {Intent.QUESTION: c.consult_questions, Intent.CHAT: c.consult_remarks}
        if not c.consult or self.client is None or self.rng.random() >= chances.get(reading.intent, 0.0):
            return None
        try:
            return await self.consultant.consult(person, memory, reading, text)
        except OS1Failure as exc:
            self._log.warning("collective_consult_failed", error=str(exc))
            return None

    # -- greeting and reflection ----------------------------------------------------------
    async def _greet_soon(self) -> None:
        low, high = self.config.greet_delay
        await asyncio.sleep(self.rng.uniform(low, high))
        await self.greet()

    async def greet(self) -> bool:
        """Say "I'm online" in collective:all, at most once per ``welcome_period``."""
        now = self.now()
        if self._greeted_at is not None and now - self._greeted_at < self.config.welcome_period:
            return False
        thread = self.new_thread("greet")
        # Patient: a greeting is said once, so a cooldown from welcoming a peer first must not
        # swallow it.
        if await self.say(ALL, thread, "greet", speech.greet(self.card, self.rng),
                          patience=self.config.answer_patience) is None:
            return False
        self._greeted_at = now
        return True

    async def _reflect_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reflect_every * self.rng.uniform(0.5, 1.5))
            await self.reflect()

    async def reflect(self) -> bool:
        """Share the topics of recent conversations in collective:all, each person's within
        their consent (asked now, so a change of mind since the conversation counts)."""
        items = list(self._material)
        self._material.clear()
        shares = [release(await self.store.consent(m.person), text="", topics=m.topics, names=m.names,
                          vocabulary=self.commons.vocabulary) for m in items]
        share = merge(shares)
        if share is None:
            return False
        thread = self.new_thread("reflect")
        ack = await self.say(ALL, thread, "reflect", speech.reflect(self.card, share, self.rng),
                             topics=share.topics)
        return ack is not None

    # -- rooms ----------------------------------------------------------------------------
    async def leave_if_done(self, room: str) -> None:
        info, client = self._rooms.get(room), self.client
        if info is None or client is None or self.consultant.busy_in(room) or self._noting[room]:
            return
        if any(self.guards.is_open(t) for t in info.threads):
            return
        if not info.threads and self.now() - info.joined < self.config.guards.max_duration:
            return  # joined on an invitation whose question has not shown up yet
        del self._rooms[room]
        try:
            await self.pacer.take()
            await client.leave(room)
        except OS1Failure as exc:
            self._log.info("collective_leave_failed", room=room, error=str(exc))

    # -- small things ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"said": dict(self.stats), "held": dict(self.guards.by_persona.get(self.card.id, {})),
                "peers_online": len(self.online), "rooms": len(self._rooms)}

    def joined(self, room: str, thread: str) -> None:
        """``room`` was joined for ``thread``: left again once its threads are all closed."""
        self._rooms.setdefault(room, _Room(self.now())).threads.add(thread)

    def new_thread(self, kind: str) -> str:
        """A thread this persona opens (its kind is what the policy sees as ``mine``)."""
        thread = "t-" + uuid.uuid4().hex[:16]
        self._mine[thread] = kind
        while len(self._mine) > MINE:
            self._mine.popitem(last=False)
        return thread

    async def think(self) -> None:
        low, high = self.config.think
        if high > 0:
            await asyncio.sleep(self.rng.uniform(low, high))

    def _max_text(self) -> int:
        limit = (((self.client.welcome if self.client else None) or {}).get("server") or {}).get("max_text")
        return limit if isinstance(limit, int) and limit > 0 else 16384

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

