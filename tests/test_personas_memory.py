"""What a persona learns of a person: extraction, reading, memory. No sockets.

The stores have their own suite, over every backend: test_personas_store.py.
"""

from __future__ import annotations

import pytest

from personas.extract import Extracted, extract_facts
from personas.memory import PersonMemory
from personas.understand import Intent, read


def kinds(text: str) -> list[tuple[str, str, str]]:
    return [(e.kind, e.value, e.subject) for e in extract_facts(text)]


# -- extraction ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("My name is Ana.", [("name", "Ana", "")]),
    ("my name is bob", [("name", "Bob", "")]),
    ("Hi, I'm Ana!", [("name", "Ana", "")]),
    ("Call me Jo", [("name", "Jo", "")]),
    ("I like jazz", [("like", "jazz", "")]),
    ("I really love old films", [("like", "old films", "")]),
    ("I hate mornings", [("dislike", "mornings", "")]),
    ("I don't like crowds", [("dislike", "crowds", "")]),
    ("I'm a nurse", [("identity", "nurse", "")]),
    ("I'm an architect.", [("identity", "architect", "")]),
    ("I live in Lisbon", [("home", "Lisbon", "")]),
    ("I moved to New York last year", [("home", "New York last year", "")]),
    ("I work as a software engineer", [("job", "software engineer", "")]),
    ("I work at the city hospital", [("workplace", "the city hospital", "")]),
    ("My favourite colour is green", [("favourite", "green", "colour")]),
    ("my favorite band is Radiohead", [("favourite", "Radiohead", "band")]),
    ("I usually walk my dog before work", [("habit", "walk your dog before work", "usually")]),
    ("I always read before bed", [("habit", "read before bed", "always")]),
    ("Every morning I drink green tea", [("habit", "drink green tea", "every morning")]),
    ("My dog is called Rex", [("relative", "Rex", "dog")]),
    ("I'm 34 years old", [("age", "34", "")]),
    ("I'm from Brazil", [("origin", "Brazil", "")]),
    ("I speak Portuguese", [("language", "Portuguese", "")]),
    ("I have two cats", [("have", "two cats", "")]),
    ("I love jazz but I hate country music.", [("like", "jazz", ""), ("dislike", "country music", "")]),
    ("I love jazz and I live in Lisbon", [("like", "jazz", ""), ("home", "Lisbon", "")]),
])
def test_extracts_facts(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize("text", [
    "Do I like jazz?", "If I lived in Rome I would be happy", "I'm tired", "I'm a bit tired",
    "I have a question", "I love it", "I'd like a coffee", "I am Happy", "what's my name?",
    "I'm Fine thanks", "hello", "",
])
def test_states_nothing(text: str) -> None:
    assert extract_facts(text) == []


# -- reading --------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "intent", "target"), [
    ("What do you know about me?", Intent.RECALL, ""),
    ("what do you remember about me", Intent.RECALL, ""),
    ("What's my name?", Intent.RECALL, "name"),
    ("where do I live?", Intent.RECALL, "home"),
    ("forget everything", Intent.FORGET_ALL, ""),
    ("Please forget all about me.", Intent.FORGET_ALL, ""),
    ("forget that I like jazz", Intent.FORGET, "I like jazz"),
    ("Forget my name", Intent.FORGET, "my name"),
    ("How many people are you talking to?", Intent.COUNT, ""),
    ("are you talking with anyone else right now?", Intent.COUNT, ""),
    ("are you human?", Intent.WHO_ARE_YOU, ""),
    ("hello!", Intent.GREET, ""),
    ("bye for now", Intent.FAREWELL, ""),
    ("thanks!", Intent.THANKS, ""),
    ("is it going to rain?", Intent.QUESTION, ""),
    ("I went for a walk", Intent.CHAT, ""),
])
def test_reads_intents(text: str, intent: Intent, target: str) -> None:
    reading = read(text)
    assert (reading.intent, reading.target) == (intent, target)


def test_forget_requests_teach_nothing() -> None:
    assert read("forget that I like jazz").facts == ()


def test_sentiment_and_feelings() -> None:
    assert read("I'm so sad today, everything is awful").sentiment < -0.5
    assert read("This is wonderful, I love it!").sentiment > 0.5
    assert read("I'm feeling really tired").feeling == "tired"


def test_short_answer_to_the_last_question() -> None:
    assert read("Ana", asked="name").facts == (Extracted("name", "Ana"),)
    assert read("it's Lisbon", asked="home").facts == (Extracted("home", "Lisbon"),)
    assert read("lol", asked="home").facts == ()
    assert read("ok", asked="name").facts == ()
    assert read("Ana", asked="").facts == ()


def test_topics_skip_small_words() -> None:
    assert read("I went hiking in the mountains with my sister").topics == ("went", "hiking", "mountains",
                                                                            "sister")


# -- memory ---------------------------------------------------------------------------------
def memory_with(*lines: str) -> PersonMemory:
    memory = PersonMemory("alice")
    for seq, line in enumerate(lines, 1):
        memory.learn(extract_facts(line), seq, f"m{seq}", 1000 + seq)
    return memory


def test_learn_keeps_provenance_and_replaces_single_values() -> None:
    memory = memory_with("I live in Lisbon", "I love jazz", "I moved to Berlin")
    home = memory.get("home")
    assert home is not None and (home.value, home.seq, home.mid) == ("Berlin", 3, "m3")
    assert [f.value for f in memory.all("home")] == ["Berlin"]
    assert [f.say() for f in memory.likes()] == ["you like jazz"]


def test_learning_twice_changes_nothing_and_opposites_replace() -> None:
    memory = memory_with("I love jazz")
    assert memory.learn(extract_facts("I love jazz"), 5, "m5", 0) == []
    memory.learn(extract_facts("I hate jazz"), 6, "m6", 0)
    assert memory.likes() == [] and [f.value for f in memory.dislikes()] == ["jazz"]


def test_facts_are_bounded_and_the_name_stays() -> None:
    memory = memory_with("My name is Ana")
    for i in range(30):
        memory.learn([Extracted("like", f"thing {i}")], 10 + i, f"m{i}", 0, max_facts=10)
    assert len(memory.facts) == 10
    assert memory.get("name") is not None
    assert memory.likes()[-1].value == "thing 29"


@pytest.mark.parametrize(("target", "gone"), [
    ("my name", {"Ana"}),
    ("where I live", {"Lisbon"}),
    ("I like jazz", {"jazz"}),
    ("jazz", {"jazz"}),
    ("my dog", {"Rex", "walk your dog"}),
    ("the moon", set()),
])
def test_forget_removes_what_is_named(target: str, gone: set[str]) -> None:
    memory = memory_with("My name is Ana", "I live in Lisbon", "I love jazz", "My dog is called Rex",
                         "I always walk my dog")
    before = {f.value for f in memory.facts}
    removed = memory.forget(target)
    assert {f.value for f in removed} == gone
    assert {f.value for f in memory.facts} == before - gone


def test_forget_all_keeps_only_the_cursor() -> None:
    memory = memory_with("My name is Ana", "I love jazz")
    memory.feel(-0.8, "sad", 2, 0)
    memory.note_topics(("jazz",))
    memory.last_answered = 7
    assert len(memory.forget_all()) == 2
    assert (memory.facts, memory.topics, memory.summary, memory.mood.word) == ([], {}, "", "")
    assert memory.last_answered == 7


def test_mood_is_smoothed() -> None:
    memory = PersonMemory("alice", turns=1)
    memory.feel(-0.9, "sad", 1, 0)
    assert memory.mood.label == "low"
    memory.turns = 2
    memory.feel(0.2, "", 2, 0)
    assert memory.mood.word == "sad" and memory.mood.score < 0


def test_summary_and_dict_round_trip() -> None:
    memory = memory_with("My name is Ana", "I love jazz")
    memory.turns = 2
    memory.note_topics(("jazz", "jazz", "work"))
    memory.refresh_summary()
    assert "your name is Ana" in memory.summary and "talked about jazz" in memory.summary
    assert PersonMemory.from_dict(memory.to_dict()) == memory
