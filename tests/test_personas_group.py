"""A persona in a group room, against a real hub: invited, answers only when addressed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from persona_util import Reply, eventually, people, personas, store

from clients.sdk import Client
from personas.memory import InMemoryStore
from personas.worker import mention_pattern, reply_cid

__all__ = ["people", "personas", "store"]  # fixtures, used by name

Start = Callable[..., Any]
ROOM = "group:book-club"
QUIET = 0.6  # seconds of silence that count as "no reply"


async def persona_reply(client: Client, seq: int, limit: float = 10.0) -> Reply:
    """Samantha's reply to message `seq` of the group, with the deltas of its stream."""
    deltas: dict[str, list[str]] = {}
    async with asyncio.timeout(limit):
        while True:
            event = await client.next_event()
            if event.get("room") != ROOM or (event.get("from") or {}).get("id") != "samantha":
                continue
            if event["t"] == "delta":
                deltas.setdefault(event["stream"], []).append(event["text"])
            elif event["t"] == "msg" and event.get("reply_to") == seq:
                return Reply(event, deltas.get(event.get("stream", ""), []))


async def quiet(client: Client, period: float = QUIET) -> list[dict[str, Any]]:
    """Samantha's msgs in the group during `period` (expected: none)."""
    said: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + period
    while (left := end - loop.time()) > 0:
        try:
            event = await client.next_event(timeout=left)
        except TimeoutError:
            break
        if event.get("t") == "msg" and event.get("room") == ROOM \
                and (event.get("from") or {}).get("id") == "samantha":
            said.append(event)
    return said


async def open_group(people: Start) -> tuple[Client, Client]:
    """Alice creates the group, Bob joins, Alice invites Samantha; returns once she is in."""
    alice, bob = (await people("alice", name="Alice")).client, (await people("bob", name="Bob")).client
    await alice.join(ROOM, create=True)
    await bob.join(ROOM)
    await alice.invite(ROOM, "samantha")
    async with asyncio.timeout(5):
        while True:
            event = await alice.next_event()
            if event.get("t") == "presence" and event.get("room") == ROOM and "samantha" in event["joined"]:
                break
    return alice, bob


async def say(client: Client, text: str, reply_to: int | None = None) -> int:
    return int((await client.send(ROOM, text, reply_to=reply_to))["seq"])


def test_addressed_means_the_name_as_a_word() -> None:
    from persona_util import card
    pattern = mention_pattern(card("samantha"))
    for text in ("Samantha, what do you think?", "@samantha hi", "what about you, SAMANTHA?",
                 "samantha's view?"):
        assert pattern.search(text), text
    for text in ("samanthas", "xsamantha", "what do you think?"):
        assert not pattern.search(text), text


async def test_group_answers_only_when_addressed(personas: Start, people: Start) -> None:
    runtime = await personas("samantha")
    alice, bob = await open_group(people)

    first = await say(alice, "I just finished the new book, it was great")
    assert await quiet(alice) == [], "an unaddressed message gets no reply"

    asked = await say(bob, "Samantha, what do you think of it?")
    reply = await persona_reply(bob, asked)
    msg = reply.msg
    assert msg["room"] == ROOM and msg["reply_to"] == asked
    assert msg["stream"] == msg["cid"] == reply_cid(ROOM, asked)
    assert reply.deltas and "".join(reply.deltas) == msg["text"]
    seen_by_alice = await persona_reply(alice, asked)
    assert seen_by_alice.msg["seq"] == msg["seq"]

    # A reply to one of her messages addresses her; a reply between humans does not.
    await say(bob, "yes, me too", reply_to=first)
    assert await quiet(bob) == []
    follow = await say(alice, "haha, good point", reply_to=msg["seq"])
    assert (await persona_reply(alice, follow)).msg["reply_to"] == follow

    history = await alice.history(ROOM)
    answered = [m["reply_to"] for m in history if m["from"]["id"] == "samantha"]
    assert answered == [asked, follow]
    assert runtime.worker("samantha").stats["answered"] == 2


async def test_memory_in_a_group_is_per_person(personas: Start, people: Start,
                                                store: InMemoryStore) -> None:
    await personas("samantha")
    alice, bob = await open_group(people)
    told = await say(alice, "@samantha my name is Ana and I love jazz")
    await persona_reply(alice, told)
    told = await say(bob, "Samantha: call me Bo. I hate jazz.")
    await persona_reply(bob, told)

    asked = await say(alice, "samantha, what do you know about me?")
    a = (await persona_reply(alice, asked)).text
    asked = await say(bob, "Samantha, what do you know about me?")
    b = (await persona_reply(bob, asked)).text
    assert "your name is Ana" in a and "you like jazz" in a and "Bo" not in a
    assert "your name is Bo" in b and "you don't like jazz" in b and "Ana" not in b

    async def cursor_moved() -> bool:  # the store is written just after the reply
        cursor = await store.get("samantha", ROOM)
        return cursor is not None and cursor.last_answered == asked and cursor.facts == []

    await eventually(cursor_moved)
    memory = await store.get("samantha", "alice")
    assert memory is not None and memory.last_answered == 0  # dm cursors are not group seqs


async def test_group_message_sent_while_down_is_answered_once_after_restart(
        personas: Start, people: Start) -> None:
    runtime = await personas("samantha")
    alice, bob = await open_group(people)
    early = await say(alice, "Samantha, hello!")
    early_reply = (await persona_reply(alice, early)).msg["seq"]
    later = await say(bob, "Samantha, do you like poems?")
    await persona_reply(alice, later)
    await runtime.stop()

    ignored = await say(bob, "while she is away: who brings snacks?")
    missed = await say(alice, "Samantha, are you back?")
    await personas("samantha")  # same store: it rejoins the group from its cursor
    assert (await persona_reply(alice, missed)).msg["reply_to"] == missed
    # A reply to a message she sent before the restart still addresses her (looked up).
    again = await say(bob, "I agree with that", reply_to=early_reply)
    await persona_reply(bob, again)
    await persona_reply(alice, again)
    assert await quiet(alice) == [], "nothing answered twice, the unaddressed one not at all"

    history = await alice.history(ROOM)
    answered = [m["reply_to"] for m in history if m["from"]["id"] == "samantha"]
    assert answered == [early, later, missed, again]
    assert ignored not in answered
