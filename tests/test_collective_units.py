"""The pure parts of the collective, without a socket: guards, consent, topics, policy, speech."""

from __future__ import annotations

import random

from collective_util import bot_card, builtin, config
from hypothesis import given
from hypothesis import strategies as st

from personas.collective import notes, speech
from personas.collective.consent import merge, names_of, release
from personas.collective.guards import GuardConfig, Guards, Verdict
from personas.collective.policy import Incoming, NaturalPolicy, View
from personas.collective.topics import choose, fit, known_topic, room_for, vocabulary
from personas.memory import PersonMemory
from personas.understand import topics

VOCAB = vocabulary(builtin("samantha", "atlas", "nova", "juniper", "kit"))


def gate(**overrides: float) -> Guards:
    loose = {"max_turns": 100, "max_duration": 1000.0, "cooldown": 0.0, "rate_turns": 100,
             "budget_turns": 100, **overrides}
    return Guards(GuardConfig(**loose), names=["atlas", "Atlas", "nova", "Nova"])  # type: ignore[arg-type]


# -- guards -----------------------------------------------------------------------------------

def test_max_turns_counts_every_turn_and_closes_the_thread() -> None:
    g = gate(max_turns=3)
    assert [g.admit("a", "t", "r", f"word{n} apple{n} pear{n} {'xyz' * n}", f"c{n}", n).ok
            for n in range(1, 5)][:3] == [True, True, True]
    refused = g.admit("b", "t", "r", "brand new content here", "c9", 10)
    assert (refused.ok, refused.guard, refused.closes) == (False, "closed", False)
    assert g.threads["t"].closed == "max_turns"
    assert g.counts["max_turns"] == 1


def test_max_duration_from_the_first_turn_and_sweep() -> None:
    g = gate(max_duration=5.0)
    assert g.admit("a", "t", "r", "chess openings matter", "c1", 100.0).ok
    assert g.admit("b", "t", "r", "endgames matter more", "c2", 104.9).ok
    assert g.admit("a", "t", "r", "tactics decide games", "c3", 105.0).guard == "max_duration"
    g.observe("u", "r", 1, "x", "cx", "a quiet thread", 200.0)
    assert [t.id for t in g.sweep(205.0)] == ["u"] and g.threads["u"].closed == "max_duration"


def test_echo_stops_two_personas_thanking_each_other() -> None:
    g = gate()
    assert g.admit("driver", "t", "r", "Let us talk about chess openings.", "c0", 0).ok
    assert g.admit("nova", "t", "r", "Thank you so much, Atlas! That means a lot.", "c1", 1).ok
    verdict = g.admit("atlas", "t", "r", "Thanks, Nova — that's so kind of you!", "c2", 2)
    assert (verdict.guard, verdict.closes) == ("echo", True)


def test_echo_catches_near_duplicates_but_not_a_real_answer() -> None:
    g = gate()
    assert g.admit("a", "t", "r", "Stoicism is about what is in your control.", "c1", 0).ok
    assert g.admit("b", "t", "r", "Gardens teach patience better than any book.", "c2", 1).ok
    assert g.admit("a", "t", "r", "Stoicism: it's about what's in your control!", "c3", 2).guard == "echo"


def test_one_thank_you_after_content_is_fine() -> None:
    g = gate()
    assert g.admit("a", "t", "r", "Atlas, what should a curious person know about stoicism?", "c1", 0).ok
    assert g.admit("atlas", "t", "r", "Begin with one small step.", "c2", 1).ok
    assert g.admit("a", "t", "r", "Thank you, Atlas — that helps.", "c3", 2).ok


def test_cooldown_rate_and_budget_say_when_to_retry() -> None:
    g = gate(cooldown=2.0)
    assert g.admit("a", "t1", "r", "apples", "c1", 10.0).ok
    held = g.admit("a", "t2", "r", "pears", "c2", 10.5)
    assert (held.guard, held.retry_after) == ("cooldown", 1.5)
    assert g.admit("b", "t2", "r", "pears", "c3", 10.5).ok  # cooldown is per persona

    g = gate(rate_turns=2, rate_window=60.0)
    assert g.admit("a", "t1", "r", "one", "c1", 0.0).ok and g.admit("a", "t2", "r", "two", "c2", 1.0).ok
    held = g.admit("a", "t3", "r", "three", "c3", 2.0)
    assert (held.guard, held.retry_after) == ("rate", 58.0)
    assert g.admit("a", "t3", "r", "three", "c3", 60.5).ok

    g = gate(budget_turns=4, budget_window=60.0, chatter_share=0.5)
    assert all(g.admit(p, f"t{p}", "r", f"text {p}", p, 0.0, chatter=True).ok for p in "ab")
    assert g.admit("c", "tc", "r", "text c", "c", 1.0, chatter=True).guard == "budget"  # chatter: half
    assert all(g.admit(p, f"t{p}", "r", f"text {p}", p, 1.0).ok for p in "cd")  # a consultation: all
    held = g.admit("e", "te", "r", "text e", "e", 2.0)
    assert (held.guard, held.retry_after) == ("budget", 58.0)
    assert g.by_persona["e"]["budget"] == 1 and g.status()["admitted"] == 4


def test_dry_admission_changes_nothing_and_last_closes() -> None:
    g = gate()
    assert g.admit("a", "t", "r", "question about chess", "c1", 0.0, dry=True).ok
    assert "t" not in g.threads and g.admitted == 0
    assert g.admit("a", "t", "r", "question about chess", "c1", 0.0).ok
    assert g.admit("a", "t", "r", "Thanks!", "c2", 1.0, last=True).ok
    assert g.threads["t"].closed == "done" and not g.is_open("t")


def test_observations_count_once_and_reserved_turns_are_not_counted_twice() -> None:
    g = gate()
    assert g.admit("a", "t", "r", "my own words", "cid-a", 0.0).turn == 1
    g.observe("t", "r", 1, "a", "cid-a", "my own words", 0.1)  # our turn coming back
    for _ in range(3):  # the same message seen by three personas of the runtime
        g.observe("t", "r", 2, "b", "cid-b", "another voice entirely", 0.2)
    assert g.threads["t"].turns == 2


def test_thread_states_are_bounded() -> None:
    g = Guards(GuardConfig(max_threads=3))
    for n in range(5):
        g.observe(f"t{n}", "r", n, "x", "c", "hello there", 0.0)
    assert list(g.threads) == ["t2", "t3", "t4"]


# -- consent ----------------------------------------------------------------------------------

def test_release_by_level() -> None:
    text = "Quillon Vantablack asks about stoicism and gardening, zebra-canary-7f3a?"
    names = ("quillon", "Quillon Vantablack")
    assert release("none", text=text, topics=topics(text), names=names, vocabulary=VOCAB) is None
    share = release("topics", text=text, topics=topics(text), names=names, vocabulary=VOCAB)
    assert share is not None and share.topics == ("stoicism", "gardening") and share.quote == ""
    full = release("full", text=text, topics=topics(text), names=names, vocabulary=VOCAB)
    assert full is not None and full.quote == text and full.topics == share.topics
    assert release("everything", text=text, topics=topics(text), names=names, vocabulary=VOCAB) is None


def test_a_name_that_is_a_topic_word_never_leaves() -> None:
    memory = PersonMemory("p1", name="Rose Garden")
    share = release("topics", text="", topics=("rose", "garden", "music"), names=names_of(memory, "p1"),
                    vocabulary=VOCAB | {"rose"})
    assert share is not None and share.topics == ("music",)


def test_merge_keeps_topics_only() -> None:
    shares = [release("full", text="secret words", topics=("music", "chess"), names=(), vocabulary=VOCAB),
              release("topics", text="", topics=("music",), names=(), vocabulary=VOCAB), None]
    merged = merge(shares)
    assert merged is not None and merged.topics == ("music", "chess") and merged.quote == ""
    assert merge([None]) is None


@given(st.text(max_size=80), st.from_regex(r"zq[a-z0-9-]{4,16}", fullmatch=True))
def test_under_topics_nothing_but_vocabulary_leaves(before: str, canary: str) -> None:
    text = f"{before} {canary} stoicism"
    share = release("topics", text=text, topics=topics(text, limit=10), names=(), vocabulary=VOCAB)
    assert share is not None and share.quote == ""
    assert all(known_topic(word, VOCAB) for word in share.topics)
    asked = speech.ask(builtin("samantha")[0], "stoicism", builtin("atlas"), share, random.Random(1))
    assert canary not in asked.lower() and canary not in " ".join(share.topics)


# -- topics, policy and speech ------------------------------------------------------------------

def test_fit_choose_and_room() -> None:
    samantha, atlas, nova, juniper = builtin("samantha", "atlas", "nova", "juniper")
    cards = {c.id: c for c in (samantha, atlas, nova, juniper)}
    assert (fit(atlas, "stoicism"), fit(atlas, "mountains"), fit(atlas, "music")) == (2, 1, 0)
    assert fit(juniper, "gardens") == 1 and fit(juniper, "gardening") == 2
    pick = choose(samantha, ("music", "physics", "stars"), cards, {"atlas", "nova", "juniper"}, limit=2)
    assert pick is not None and pick.topic == "physics" and [c.id for c in pick.experts] == ["nova"]
    assert choose(samantha, ("physics",), cards, {"atlas"}, limit=2) is None  # Nova is offline
    assert room_for("science fiction") == "collective:science-fiction"


def msg(kind: str, **extra: object) -> Incoming:
    meta = {"thread": "t1", "kind": kind, **extra}
    found = Incoming.parse({"t": "msg", "room": "collective:all", "seq": 3, "text": "hello",
                            "from": {"id": "nova", "name": "Nova", "role": "persona"}, "meta": meta})
    assert found is not None
    return found


def test_natural_policy_answers_what_is_put_to_it_and_lets_threads_end() -> None:
    atlas = builtin("atlas")[0]
    view = View(atlas, {"atlas": atlas}, config(), random.Random(0))
    policy = NaturalPolicy()
    said = policy.respond(msg("ask", topic="stoicism", to=["atlas"]), view)
    assert said is not None and said.kind == "answer" and said.topic == "stoicism"
    assert policy.respond(msg("ask", topic="stoicism", to=["kit"]), view) is None
    assert policy.respond(msg("answer"), view) is None and policy.respond(msg("close"), view) is None
    assert policy.respond(msg("welcome"), view) is None
    welcome = policy.respond(msg("greet"), view)
    assert welcome is not None and welcome.kind == "welcome" and "Nova" in welcome.text
    view.welcomed_recently = True
    assert policy.respond(msg("greet"), view) is None
    view.mine = "reflect"
    thanks = policy.respond(msg("reply", topic="chess"), view)
    assert thanks is not None and thanks.kind == "close"


def test_parse_tolerates_foreign_messages() -> None:
    found = Incoming.parse({"t": "msg", "room": "collective:misc", "seq": 9, "text": "hi",
                            "from": {"id": "agent"}, "meta": {"kind": 3, "to": "x"}})
    assert found is not None and (found.thread, found.kind, found.to) == ("collective:misc#9", "other", ())
    assert Incoming.parse({"t": "msg", "room": "dm:a:b", "seq": 1}) is None


def test_speech_is_in_voice_and_seeded() -> None:
    juniper, kit = builtin("juniper")[0], bot_card("kit2", "Kit")
    line = speech.answer(juniper, "gardening", random.Random(2))
    assert "Garden" in line or "garden" in line
    assert speech.answer(kit, "chess", random.Random(5)) == speech.answer(kit, "chess", random.Random(5))
    assert speech.cite([("Atlas", "Breathe."), ("Nova", "Look up!")], "stoicism",
                       random.Random(0)).endswith("(Nova chimed in too.)")


# -- guard notes -----------------------------------------------------------------------------

def test_a_guard_event_is_noted_once_per_thread_and_budget_once_per_window() -> None:
    n = notes.Notes(budget_window=60.0)
    assert n.claim("t1", "echo", 0.0) and not n.claim("t1", "echo", 1.0)
    assert n.claim("t2", "max_turns", 1.0) and n.claim("t2", "echo", 1.0)  # another guard, another event
    assert not n.claim("t3", "cooldown", 1.0) and not n.claim("t3", "rate", 1.0)  # pacing: no note
    assert n.claim("t4", "budget", 10.0) and not n.claim("t5", "budget", 69.9)
    assert n.claim("t5", "budget", 70.0)
    n.seen("t6", "echo", 71.0)  # another runtime noted it first
    n.seen("t7", "budget", 71.0)
    assert not n.claim("t6", "echo", 72.0) and not n.claim("t8", "budget", 72.0)
    assert n.noted("t6", "echo") and not n.noted("t6", "max_turns")


def test_a_guard_notes_meta_and_words() -> None:
    c = GuardConfig(max_turns=6, max_duration=45.0, budget_turns=20, budget_window=60.0, chatter_share=0.5)
    thread = Guards(c).thread("t1", "collective:all", 0.0)
    thread.turns = 6
    assert notes.meta(Verdict(False, "max_turns"), thread, c) == {
        "kind": "guard", "guard": "max_turns", "thread": "t1", "turns": 6, "max_turns": 6}
    assert notes.meta(Verdict(False, "max_duration"), thread, c)["max_duration"] == 45.0
    budget = notes.meta(Verdict(False, "budget", used=12, limit=10), thread, c)  # chatter, past its share
    assert {k: budget[k] for k in ("used", "limit", "window", "chatter")} == \
        {"used": 10, "limit": 10, "window": 60.0, "chatter": True}
    assert "6 turns" in notes.text(Verdict(False, "max_turns"), c)
    assert "repeating" in notes.text(Verdict(False, "echo"), c)
    assert notes.cid("t1", "echo") == notes.cid("t1", "echo") != notes.cid("t1", "max_turns")
    assert Incoming.parse({"room": "collective:all", "seq": 3, "meta": {"kind": "guard", "guard": "echo",
                                                                         "thread": "t1"}}) == \
        Incoming("collective:all", 3, "", "", "", 0, "", "t1", "guard", guard="echo")
