"""Persona workers against a real hub on a real socket: streaming, order, memory, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from conftest import HubServer
from persona_util import Person, eventually, people, personas, store
from sdk_util import kill

from clients.sdk import Client
from personas.memory import InMemoryStore
from personas.worker import reply_cid

__all__ = ["people", "personas", "store"]  # fixtures, used by name

Start = Callable[..., Any]


async def test_streamed_reply_deltas_then_msg_with_same_stream(personas: Start, people: Start) -> None:
    await personas("samantha")
    alice = await people("alice", name="Alice")
    seq = await alice.say("Hi! My name is Ana and I love jazz.")
    reply = await alice.reply_to(seq)
    msg = reply.msg
    assert msg["from"] == {"id": "samantha", "role": "persona", "name": "Samantha"}
    assert msg["reply_to"] == seq
    assert msg["stream"] == msg["cid"] == reply_cid(alice.room, seq)
    assert reply.deltas, "the reply should stream as deltas before the final msg"
    assert "".join(reply.deltas) == msg["text"]
    assert reply.typing
    assert "Ana" in msg["text"]


async def test_ignores_its_own_messages_and_answers_each_once(personas: Start, people: Start) -> None:
    runtime = await personas("samantha")
    alice = await people("alice")
    for text in ("hello", "I live in Porto"):
        await alice.ask(text)
    await asyncio.sleep(0.2)  # time for any stray answer to an echo to show up
    history = await alice.client.history(alice.room)
    assert [m["from"]["id"] for m in history] == ["alice", "samantha"] * 2
    assert runtime.worker("samantha").stats["answered"] == 2


async def test_conversation_is_answered_in_order(personas: Start, people: Start) -> None:
    await personas("samantha")
    alice = await people("alice")
    seqs = [await alice.say(f"message number {i} about gardens") for i in range(8)]
    replies = [await alice.reply_to(seq) for seq in seqs]
    assert [r.msg["reply_to"] for r in replies] == seqs
    reply_seqs = [r.msg["seq"] for r in replies]
    assert reply_seqs == sorted(reply_seqs)


async def test_each_person_is_remembered_separately(personas: Start, people: Start) -> None:
    await personas("samantha")
    alice, bob = await people("alice"), await people("bob")
    await asyncio.gather(alice.ask("My name is Ana and I love jazz"), bob.ask("Call me Bo. I hate jazz."))
    a = await alice.ask("what do you know about me?")
    b = await bob.ask("what do you know about me?")
    assert "your name is Ana" in a.text and "you like jazz" in a.text and "Bo" not in a.text
    assert "your name is Bo" in b.text and "you don't like jazz" in b.text and "Ana" not in b.text


async def test_recall_and_forget_through_the_chat(personas: Start, people: Start,
                                                  store: InMemoryStore) -> None:
    await personas("samantha")
    alice = await people("alice")
    await alice.ask("My name is Ana. I live in Lisbon.")
    told = await alice.say("I love jazz and I hate mornings")
    await alice.reply_to(told)
    known = await alice.ask("What do you know about me?")
    for fact in ("your name is Ana", "you live in Lisbon", "you like jazz", "you don't like mornings"):
        assert fact in known.text
    assert f"(message #{told})" in known.text  # provenance: which message taught it

    memory = await store.get("samantha", "alice")
    assert memory is not None and {f.value for f in memory.facts} == {"Ana", "Lisbon", "jazz", "mornings"}
    assert next(f for f in memory.facts if f.value == "jazz").seq == told

    gone = await alice.ask("Please forget that I live in Lisbon")
    assert "Lisbon" in gone.text
    memory = await store.get("samantha", "alice")
    assert memory is not None and "Lisbon" not in {f.value for f in memory.facts}

    await alice.ask("forget everything")
    memory = await store.get("samantha", "alice")
    assert memory is not None and memory.facts == [] and memory.summary == ""
    after = await alice.ask("what do you know about me?")
    assert "Ana" not in after.text and "jazz" not in after.text


async def test_honest_about_how_many_people(personas: Start, people: Start) -> None:
    await personas("samantha")
    others = [await people(f"p{i}") for i in range(4)]
    await asyncio.gather(*(p.ask("hello there") for p in others))
    alice = await people("alice")
    reply = await alice.ask("How many people are you talking to right now?")
    assert "5 people" in reply.text


async def test_message_sent_while_stopped_is_answered_on_restart(
        personas: Start, people: Start, store: InMemoryStore) -> None:
    runtime = await personas("samantha")
    alice = await people("alice")
    await alice.ask("Hi, I'm Ana")
    await runtime.stop()

    missed = [await alice.say("Are you there? I moved to Berlin."), await alice.say("hello?")]
    await personas("samantha")  # same store: it knows this conversation and where it stopped
    replies = [await alice.reply_to(seq) for seq in missed]
    assert [r.msg["reply_to"] for r in replies] == missed

    async def caught_up() -> bool:
        memory = await store.get("samantha", "alice")
        return memory is not None and memory.last_answered == missed[-1]

    await eventually(caught_up)
    memory = await store.get("samantha", "alice")
    assert memory is not None
    home = memory.get("home")
    assert home is not None and home.value == "Berlin" and home.seq == missed[0]


async def test_reconnect_loses_nothing(personas: Start, people: Start) -> None:
    runtime = await personas("samantha")
    alice = await people("alice")
    await alice.ask("hello")
    worker = runtime.worker("samantha")
    assert worker._client is not None
    kill(worker._client)  # the persona's TCP connection dies without a close frame
    seq = await alice.say("did you hear that? I live in Oslo now")
    reply = await alice.reply_to(seq)
    assert "Oslo" in reply.text
    assert worker._client is not None and worker._client.reconnects == 1


async def test_restart_does_not_answer_twice(personas: Start, people: Start, hub: HubServer) -> None:
    runtime = await personas("samantha")
    alice = await people("alice")
    await alice.ask("hello")
    await runtime.stop()
    await personas("samantha")
    await alice.ask("still me")
    await asyncio.sleep(0.2)
    history = await alice.client.history(alice.room)
    assert [m["from"]["id"] for m in history] == ["alice", "samantha"] * 2


async def test_twenty_facts_recalled_across_a_restart(personas: Start, people: Start,
                                                      store: InMemoryStore) -> None:
    script = {
        "My name is Ana.": "your name is Ana", "I'm 34 years old.": "you're 34",
        "I live in Lisbon.": "you live in Lisbon", "I'm from Brazil.": "you're from Brazil",
        "I work as a nurse.": "you work as a nurse", "I work at the city hospital.": "the city hospital",
        "I love jazz.": "you like jazz", "I hate mornings.": "you don't like mornings",
        "My favourite colour is green.": "your favourite colour is green",
        "I usually walk my dog before work.": "you usually walk your dog before work",
        "My dog is called Rex.": "your dog is called Rex", "I have two cats.": "you have two cats",
        "I speak Portuguese.": "you speak Portuguese", "I play the guitar.": "you play guitar",
        "My birthday is in May.": "your birthday is in May", "I enjoy hiking.": "you like hiking",
        "I can't stand traffic.": "you don't like traffic", "I'm a vegetarian.": "you're a vegetarian",
        "Every morning I drink green tea.": "every morning you drink green tea",
        "My favourite book is Dune.": "your favourite book is Dune",
    }
    runtime = await personas("samantha")
    alice = await people("alice")
    for line in script:
        await alice.ask(line)
    recalled = await alice.ask("What do you know about me?")
    missing = [fact for fact in script.values() if fact not in recalled.text]
    assert not missing, recalled.text

    await runtime.stop()
    await personas("samantha")
    again = await alice.ask("what do you remember about me?")
    assert all(fact in again.text for fact in script.values()), again.text
    await alice.ask("forget everything")
    memory = await store.get("samantha", "alice")
    assert memory is not None and memory.facts == []


async def test_several_personas_each_answer_their_own_dm(personas: Start, hub: HubServer) -> None:
    await personas("samantha", "atlas", "kit")
    client = Client(hub.url, hub.token("human", "alice"))
    await client.connect()
    try:
        people = {pid: Person(client, pid) for pid in ("samantha", "atlas", "kit")}
        for pid, person in people.items():
            reply = await person.ask("hello!")
            assert reply.msg["from"]["id"] == pid
    finally:
        await client.close()


async def test_the_hub_lists_the_persona_with_its_conversations(personas: Start, people: Start,
                                                                hub: HubServer) -> None:
    await personas("samantha")
    for sub in ("alice", "bob"):
        await (await people(sub)).ask("hello")

    async def listed() -> bool:
        async with aiohttp.ClientSession() as http, http.get(
                hub.base + "/api/personas", headers={"Authorization": f"Bearer {hub.token()}"}) as r:
            body = await r.json()
        return bool(body["personas"] == [{"id": "samantha", "name": "Samantha", "online": True,
                                          "workers": 1, "conversations": 2, "mind": "reflex"}])

    await eventually(listed)


async def test_a_worker_with_a_fresh_store_answers_who_wrote_while_it_was_away(
        personas: Start, people: Start) -> None:
    """Its own record gone (a new in-memory store), the worker asks the hub which dm rooms
    were active (`inbox`) and reads from each room what it answered last: pending messages
    are answered once, nothing answered before is answered again — a person it had talked
    with, and one who wrote first while it was away."""
    runtime = await personas("samantha")
    alice, bob = await people("alice"), await people("bob")
    await alice.ask("Hi, I'm Ana")
    await runtime.stop()
    missed = [await alice.say("Are you there? I moved to Berlin."), await alice.say("hello?")]
    first = await bob.say("Hello Samantha, I'm new here")
    await personas("samantha", store=InMemoryStore())  # remembers nothing of either
    assert [(await alice.reply_to(seq)).msg["reply_to"] for seq in missed] == missed
    assert (await bob.reply_to(first)).msg["reply_to"] == first
    await asyncio.sleep(0.3)  # room for a second answer, if one were coming
    for person, asked in ((alice, [1, *missed]), (bob, [first])):
        history = await person.client.history(person.room)
        answers = [m["reply_to"] for m in history if m["from"]["id"] == "samantha"]
        assert answers == asked, history
