"""Consultation: asking the collective about a person's topic, within a bounded wait.

While a persona answers a person, a message about a topic outside its expertise that an
online peer knows becomes a question in ``collective:<topic>``: join (create), ask, invite
the peers, wait at most ``consult_wait`` for the first answer, then thank and leave in the
background while the person's reply goes out citing the answer. The question is built from
what :func:`release` let out of the conversation for that person's consent — nothing else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from personas.collective import speech
from personas.collective.consent import names_of, release
from personas.collective.topics import Pick, choose, room_for
from personas.memory import PersonMemory
from personas.understand import Intent, Reading

if TYPE_CHECKING:
    from personas.collective.backchannel import Backchannel


@dataclass(frozen=True)
class Consulted:
    """What a consultation brought back: a line for the person and the reading to think with."""

    line: str
    reading: Reading
    answers: tuple[tuple[str, str], ...]  # (who, what they said)


@dataclass
class Waiter:
    room: str
    expect: set[str]
    answers: list[tuple[str, str]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, sender: str, name: str, text: str) -> None:
        if sender in self.expect:
            self.expect.discard(sender)
            self.answers.append((name, text))
            self.done.set()  # the first answer is enough: the person is waiting


class Consultant:
    """The consultations of one persona; ``waiting`` maps a thread to its open question."""

    def __init__(self, channel: Backchannel) -> None:
        self.channel = channel
        self.waiting: dict[str, Waiter] = {}

    def take_answer(self, thread: str, kind: str, sender: str, name: str, text: str) -> bool:
        """An answer to one of our open questions: kept for the waiting reply (True)."""
        waiter = self.waiting.get(thread)
        if waiter is None or kind != "answer":
            return False
        waiter.add(sender, name, text)
        return True

    def busy_in(self, room: str) -> bool:
        return any(w.room == room for w in self.waiting.values())

    async def consult(self, person: str, memory: PersonMemory | None, reading: Reading,
                      text: str) -> Consulted | None:
        ch = self.channel
        share = release(await ch.store.consent(person), text=text, topics=reading.topics,
                        names=names_of(memory, person), vocabulary=ch.commons.vocabulary)
        if share is None or not share.topics:
            return None
        pick = choose(ch.card, share.topics, ch.commons.cards, ch.online, ch.config.max_invites)
        if pick is None:
            return None
        room, thread = room_for(pick.topic), ch.new_thread("ask")
        question = speech.ask(ch.card, pick.topic, pick.experts, share, ch.rng)
        # Ask the guards before joining anything: a held consultation costs the hub nothing
        # and the person no wait. A short cooldown is worth waiting out inside `say`.
        verdict = ch.guards.admit(ch.card.id, thread, room, question, "", ch.now(), dry=True)
        if not verdict.ok and (verdict.guard == "closed" or verdict.closes
                               or verdict.retry_after > self.patience()):
            ch.stats["consult_held"] += 1
            return None
        return await self._ask(room, thread, question, pick, reading)

    async def _ask(self, room: str, thread: str, question: str, pick: Pick,
                   reading: Reading) -> Consulted | None:
        ch = self.channel
        waiter = self.waiting[thread] = Waiter(room, {e.id for e in pick.experts})
        ch.stats["consults"] += 1
        try:
            async with asyncio.timeout(ch.config.consult_wait):
                await self._steps(room, thread, question, pick.topic, [e.id for e in pick.experts])
                await waiter.done.wait()
        except TimeoutError:
            pass  # bounded: the person gets an answer without the collective
        finally:
            self.waiting.pop(thread, None)
            ch.spawn(self._finish(room, thread, [name for name, _ in waiter.answers]))
        ch.stats["consults_answered" if waiter.answers else "consults_unanswered"] += 1
        if not waiter.answers:
            return None
        line = speech.cite(waiter.answers, pick.topic, ch.rng)
        # Answered by the collective: to the mind it is now a remark to follow up on.
        calm = replace(reading, intent=Intent.CHAT) if reading.intent is Intent.QUESTION else reading
        return Consulted(line, calm, tuple(waiter.answers))

    async def _steps(self, room: str, thread: str, question: str, topic: str, experts: list[str]) -> None:
        ch = self.channel
        client = ch.client
        if client is None:
            return
        await ch.pacer.take()
        await client.join(room, create=True)
        ch.joined(room, thread)
        # Asked before inviting: an invited peer reads the question back when it joins.
        if await ch.say(room, thread, "ask", question, topic=topic, to=experts,
                        patience=self.patience()) is None:
            return
        for expert in experts:
            await ch.pacer.take()
            await client.invite(room, expert)

    async def _finish(self, room: str, thread: str, answered_by: list[str]) -> None:
        ch = self.channel
        if answered_by and ch.guards.is_open(thread):
            await ch.think()
            await ch.say(room, thread, "close", speech.thanks(answered_by, ch.rng),
                         patience=ch.config.answer_patience)
        ch.guards.close(thread, "done" if answered_by else "unanswered")
        await ch.leave_if_done(room)

    def patience(self) -> float:
        """How long a consultation may wait for a guard: never most of the person's wait."""
        c = self.channel.config
        return min(c.answer_patience, c.consult_wait / 2)
