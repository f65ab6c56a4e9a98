"""The reflex mind, conversation bookkeeping and pacing: pure parts, tested without a socket."""

from __future__ import annotations

import asyncio
import math

import pytest
from persona_util import card

from personas.card import Card
from personas.conversation import Conversation, Pending
from personas.memory import PersonMemory
from personas.minds import make_mind
from personas.minds.base import Message, MindInput, Turn
from personas.minds.reflex import ReflexMind, compose, split_chunks
from personas.pacer import Pacer
from personas.understand import Intent, read


class Chat:
    """Drives a mind the way the worker does (read, learn, forget, compose), minus the hub."""

    def __init__(self, persona: Card, seed: int = 0, conversations: int = 1) -> None:
        self.card, self.seed, self.conversations = persona, seed, conversations
        self.memory = PersonMemory("alice", name="alice")
        self.turns: list[Turn] = []
        self.seq = 0

    def say(self, text: str) -> str:
        self.seq += 1
        reading = read(text, self.memory.asked)
        self.memory.turns += 1
        learned, forgotten = [], []
        if reading.intent is Intent.FORGET_ALL:
            forgotten = self.memory.forget_all()
        elif reading.intent is Intent.FORGET:
            forgotten = self.memory.forget(reading.target)
        else:
            learned = self.memory.learn(reading.facts, self.seq, f"m{self.seq}", 0)
            self.memory.feel(reading.sentiment, reading.feeling, self.seq, 0)
        message = Message(text, self.seq, f"m{self.seq}", "alice", "dm:samantha:alice")
        inp = MindInput(self.card, self.memory, tuple(self.turns), message, reading, learned, forgotten,
                        self.conversations)
        reply = compose(inp, self.seed)
        self.turns += [Turn("person", text, self.seq), Turn("persona", reply, self.seq + 1)]
        self.seq += 1
        return reply


SCRIPT = ["hi!", "Ana", "I'm ok, a bit tired", "I love jazz and I live in Lisbon", "I work as a nurse",
          "I usually walk my dog before work", "my dog is called Rex", "I listened to jazz all evening",
          "do you like music?", "what's my name?", "I'm so sad today, my grandmother is sick",
          "thanks for listening", "the weather is nice today", "ok", "bye"]


def run_script(persona: str = "samantha", seed: int = 0) -> list[str]:
    chat = Chat(card(persona), seed)
    return [chat.say(line) for line in SCRIPT]


def test_deterministic_for_a_seed() -> None:
    assert run_script(seed=1) == run_script(seed=1)
    assert run_script(seed=1) != run_script(seed=2)


def test_each_persona_sounds_different() -> None:
    replies = {p: run_script(p) for p in ("samantha", "atlas", "kit", "nova", "juniper")}
    assert len({tuple(r) for r in replies.values()}) == 5
    assert replies["samantha"][0] != replies["atlas"][0]


def test_not_an_echo_and_never_empty() -> None:
    for persona in ("samantha", "atlas", "kit", "nova", "juniper"):
        for line, reply in zip(SCRIPT, run_script(persona), strict=True):
            assert reply.strip() and reply.strip().lower() != line.lower()


def test_asks_the_name_then_uses_it() -> None:
    chat = Chat(card("samantha"))
    first = chat.say("hello!")
    assert "?" in first and chat.memory.asked == "name"
    chat.say("Ana")  # a bare answer to "what should I call you?"
    assert chat.memory.known_name == "Ana"
    assert "Ana" in chat.say("what's my name?")


def test_recalls_likes_and_habits_when_they_come_up() -> None:
    chat = Chat(card("samantha"))
    chat.say("I love jazz")
    assert "jazz" in chat.say("I went to a jazz club last night")
    chat.say("I usually swim before work")
    assert "swim" in chat.say("what do you know about me?")


def test_empathy_when_low_delight_when_happy() -> None:
    persona = card("samantha")
    sad = Chat(persona).say("I'm so sad, my cat died today")
    assert any(line in sad for line in persona.voice.empathy)
    happy = Chat(persona).say("I got the job!!! This is the best day ever, I'm so happy!")
    assert any(line in happy for line in persona.voice.delight)


def test_follow_up_questions_are_not_repeated() -> None:
    chat = Chat(card("samantha"))
    asked: list[str] = []
    for line in ("hello", "Ana", "fine", "jazz", "Lisbon", "nursing", "nothing much", "sure", "yes"):
        chat.say(line)
        if chat.memory.asked:
            asked.append(chat.memory.asked)
    assert len(asked) == len(set(asked))


def test_honest_count() -> None:
    many = Chat(card("samantha"), conversations=8316).say("how many people are you talking to?")
    assert "8,316 people" in many
    assert "Just you" in Chat(card("samantha"), conversations=1).say("are you talking to anyone else?")


@pytest.mark.parametrize("seed", range(4))
def test_who_are_you_is_honest(seed: int) -> None:
    reply = Chat(card("samantha"), seed).say("are you human?")
    assert "not a person" in reply or "an AI" in reply


def test_forget_confirms_what_went() -> None:
    chat = Chat(card("samantha"))
    chat.say("I live in Lisbon")
    assert "you live in Lisbon" in chat.say("forget where I live")
    assert "nothing to forget" in chat.say("forget about the moon")
    assert "blank page" in chat.say("forget everything")


async def test_reply_streams_in_chunks_that_add_up() -> None:
    chat = Chat(card("atlas"))
    chat.say("hello")
    mind = make_mind(card("atlas"))
    assert isinstance(mind, ReflexMind)
    reading = read("I love long walks in the mountains")
    inp = MindInput(card("atlas"), chat.memory, (), Message("I love long walks in the mountains", 9, "m9",
                                                            "alice", "dm:atlas:alice"), reading)
    snapshot = chat.memory.to_dict()  # composing notes what it asked: compare from the same state
    chunks = [c async for c in mind.reply(inp)]
    again = MindInput(inp.card, PersonMemory.from_dict(snapshot), (), inp.message, reading)
    assert len(chunks) > 1 and "".join(chunks) == compose(again)


def test_split_chunks_keeps_every_character() -> None:
    text = "Here's what I know:\n- one (#1)\n- two  (#2)"
    assert "".join(split_chunks(text, 3)) == text
    assert split_chunks("", 3) == [""]


# -- conversation bookkeeping -----------------------------------------------------------------
def p(seq: int, text: str = "hi") -> Pending:
    return Pending(seq, f"m{seq}", text)


def take(conv: Conversation, n: int) -> list[int]:
    seqs = []
    for _ in range(n):
        item = conv.next()
        assert item is not None
        seqs.append(item.seq)
    return seqs


def test_conversation_orders_and_dedupes() -> None:
    conv = Conversation("dm:samantha:alice", "alice")
    assert conv.offer(p(3)) and conv.offer(p(1))
    assert not conv.offer(p(3))  # a replayed duplicate
    assert not conv.offer(p(2), own=True)  # the persona's own reply
    assert take(conv, 2) == [1, 3]
    conv.answered(3)
    assert not conv.offer(p(3)) and conv.next() is None


def test_conversation_overflow_merges_the_newest() -> None:
    conv = Conversation("dm:samantha:alice", "alice", limit=3)
    for seq in range(1, 6):
        conv.offer(p(seq, f"t{seq}"))
    assert [x.seq for x in conv.queue] == [1, 2, 5]
    assert conv.queue[-1].text == "t3\nt4\nt5" and conv.queue[-1].merged == 3
    assert conv.merges == 2


def test_conversation_waits_for_the_replay_when_catching_up() -> None:
    conv = Conversation("dm:samantha:alice", "alice")
    conv.hold(since=4)
    conv.offer(p(7))  # live, arrived before the replay
    conv.release_at(7)  # the join: the room is at 7
    assert not conv.ready  # 5 and 6 are still to come through the replay
    conv.offer(p(5))
    conv.offer(p(6), own=True)
    assert not conv.offer(p(7))  # replayed duplicate of the live one
    assert conv.ready and take(conv, 2) == [5, 7]
    assert not conv.offer(p(4))  # at or below where it resumed: answered before


# -- pacing ---------------------------------------------------------------------------------
def test_pacer_keeps_a_reserve_for_replies() -> None:
    now = [0.0]
    pacer = Pacer(10, 10, reserve=0.5, clock=lambda: now[0])
    optional = sum(pacer.try_take() for _ in range(20))
    assert optional == 5  # the other half of the bucket is kept for sends
    now[0] += 1.0
    assert pacer.try_take()


async def test_pacer_take_waits_for_a_token() -> None:
    pacer = Pacer(200, 1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(5):
        await pacer.take()
    assert loop.time() - start >= 0.015


@pytest.mark.parametrize(("welcome", "rate"), [
    ({"server": {"rate": {"per_s": 50, "burst": 100}}}, 40.0),
    ({"server": {}}, math.inf),
    (None, math.inf),
])
def test_pacer_from_welcome(welcome: dict[str, object] | None, rate: float) -> None:
    assert Pacer.from_welcome(welcome).rate == rate


def test_conversation_catch_up_past_a_retention_gap() -> None:
    conv = Conversation("dm:samantha:alice", "alice")
    conv.hold(since=2)
    conv.release_at(10, retained=3)  # messages 3..7 are gone for good: the replay is 8..10
    assert not conv.ready
    for seq in (8, 9):
        conv.offer(p(seq))
    assert not conv.ready
    conv.offer(p(10), own=True)
    assert conv.ready and [x.seq for x in conv.queue] == [8, 9]
