"""Evolution: traits drift with interactions within the card's bounds, recorded in a bounded
journal; the reflex mind reads the drifted values. Pure parts and the worker-side Evolver."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from persona_util import card

from personas.card import Trait
from personas.evolution import (
    MAX_STEP,
    PRECISION,
    JournalEntry,
    Signals,
    current,
    drift,
    signals_of,
)
from personas.evolver import Evolver
from personas.memory import InMemoryStore, PersonMemory
from personas.minds.base import Message, MindInput
from personas.minds.reflex import compose
from personas.understand import read

BOUNDS = {"warmth": Trait(0.8, 0.7, 0.95), "curiosity": Trait(0.5, 0.0, 1.0),
          "playfulness": Trait(0.5, 0.4, 0.6), "energy": Trait(0.5, 0.5, 0.5)}
START = {name: t.start for name, t in BOUNDS.items()}
MOST = MAX_STEP + 0.5 * 10**-PRECISION + 1e-12  # a step, plus rounding to PRECISION decimals


def said(text: str) -> Signals:
    return signals_of(text, read(text))


# -- drift ----------------------------------------------------------------------------------------
def test_each_kind_of_message_moves_its_trait() -> None:
    warm, changes = drift(START, BOUNDS, said("You are wonderful, thank you so much!"))
    assert warm["warmth"] > 0.8 and changes["warmth"] == (0.8, warm["warmth"])
    cold, _ = drift(START, BOUNDS, said("This is awful and I hate it."))
    assert cold["warmth"] < 0.8
    funny, _ = drift(START, BOUNDS, said("haha that's a good one"))
    assert funny["playfulness"] > 0.5
    asked, _ = drift(START, BOUNDS, said("what do you think about the sea?"))
    assert asked["curiosity"] > 0.5
    assert warm["energy"] == cold["energy"] == 0.5  # min == max: it cannot move


def test_steps_are_small_and_unknown_traits_are_dropped() -> None:
    flood = Signals(messages=10_000, positive=10_000.0, questions=10_000)
    new, changes = drift({**START, "retired": 0.3}, BOUNDS, flood)
    assert "retired" not in new
    assert all(abs(b - a) <= MOST for a, b in changes.values())
    still, nothing = drift(START, BOUNDS, Signals(messages=3))  # neutral messages
    assert still == START and nothing == {}


def test_current_fills_in_starts_and_clamps_to_the_bounds() -> None:
    assert current(BOUNDS, {}) == START
    assert current(BOUNDS, {"warmth": 2.0, "curiosity": math.nan, "gone": 0.1})["warmth"] == 0.95
    assert current(BOUNDS, {"curiosity": math.nan})["curiosity"] == 0.5


amounts = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-1e6, 1e6)
counts = st.integers(-(10**12), 10**12)
signals = st.builds(Signals, messages=counts, positive=amounts, negative=amounts, jokes=counts,
                    questions=counts, thanks=counts, exclaims=counts, learned=counts)


@st.composite
def bounds(draw: st.DrawFn) -> dict[str, Trait]:
    out = {}
    for name in ("warmth", "playfulness", "curiosity", "confidence", "energy", "patience", "bluntness"):
        low, high = sorted(draw(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2)))
        out[name] = Trait(draw(st.floats(low, high)), low, high)
    return out


@given(bounds(), signals)
def test_one_drift_never_leaves_the_bounds(traits: dict[str, Trait], sig: Signals) -> None:
    new, changes = drift(current(traits, {}), traits, sig)
    for name, t in traits.items():
        assert t.min <= new[name] <= t.max
    assert all(abs(b - a) <= MOST for a, b in changes.values())
    assert sig.why()  # the journal's reason never fails, whatever the numbers


@settings(max_examples=10, deadline=None)
@given(bounds(), st.integers(0, 2**32))
def test_ten_thousand_extreme_signals_stay_within_bounds(traits: dict[str, Trait], seed: int) -> None:
    rng = random.Random(seed)
    extremes = [0.0, 1.0, -1.0, 1e300, -1e300, math.inf, -math.inf, math.nan, 5e-324]
    values = current(traits, {})
    for _ in range(10_000):
        sig = Signals(rng.choice([1, 10**9]), rng.choice(extremes), rng.choice(extremes),
                      *(rng.choice([0, 1, 10**9, -(10**9)]) for _ in range(5)))
        values, _ = drift(values, traits, sig)
        for name, t in traits.items():
            assert t.min <= values[name] <= t.max, (name, values[name], t)


def test_signals_count_kinds_and_why_never_quotes_the_person() -> None:
    sig = said("Thanks Ana! lol, what about Lisbon?") + said("I'm so sad") + Signals(learned=2)
    counted = (sig.messages, sig.jokes, sig.questions, sig.thanks, sig.exclaims, sig.learned)
    assert counted == (2, 1, 1, 1, 1, 2)
    assert sig.negative > 0 and sig.positive > 0
    why = sig.why()
    assert why.startswith("2 messages") and "Ana" not in why and "Lisbon" not in why
    assert said(":P").jokes == 1 and said("http://x").jokes == 0


def test_journal_entry_round_trip() -> None:
    entry = JournalEntry(1_700_000_000_000, {"warmth": (0.8, 0.804)}, "1 message: 1 warm")
    assert JournalEntry.from_dict(entry.to_dict()) == entry
    assert entry.to_dict()["changes"] == {"warmth": {"from": 0.8, "to": 0.804}}


# -- the worker's Evolver ---------------------------------------------------------------------------
async def test_evolver_batches_signals_into_one_journal_entry() -> None:
    store = InMemoryStore()
    samantha = card("samantha")
    evolver = Evolver(samantha, store, clock=lambda: 1700.0)
    await evolver.load()
    assert evolver.traits == {n: t.start for n, t in samantha.traits.items()}
    for text in ("haha you're funny", "what's your favourite song?", "I love talking to you"):
        evolver.note(said(text))
    entry = await evolver.flush()
    assert entry is not None and entry.ts == 1_700_000 and entry.why.startswith("3 messages")
    assert set(entry.changes) >= {"playfulness", "curiosity"} or "warmth" in entry.changes
    assert await store.journal("samantha") == [entry]
    assert (await store.character("samantha")).traits == evolver.traits
    assert await evolver.flush() is None  # nothing pending


async def test_two_workers_of_one_persona_both_drift() -> None:
    store = InMemoryStore()
    samantha = card("samantha")
    one, two = Evolver(samantha, store), Evolver(samantha, store)
    await one.load()
    await two.load()
    one.note(said("haha"))
    two.note(said("haha lol"))
    assert await one.flush() is not None
    assert await two.flush() is not None  # lost the compare-and-set once, reloaded, drifted
    stored = await store.character("samantha")
    assert stored.version == 2 and len(await store.journal("samantha")) == 2
    start = samantha.traits["playfulness"].start
    assert stored.traits["playfulness"] == pytest.approx(start + 2 * 0.004)


async def test_the_journal_stays_bounded_however_long_a_persona_lives() -> None:
    store = InMemoryStore(journal=10)
    evolver = Evolver(card("atlas"), store)
    for n in range(200):
        evolver.note(said("haha!" if n % 2 else "this is terrible"))
        await evolver.flush()
    assert len(await store.journal("atlas", limit=1000)) == 10
    for name, t in card("atlas").traits.items():
        assert t.min <= evolver.traits[name] <= t.max


# -- the reflex mind reads the drifted traits -----------------------------------------------------
def test_reflex_asks_more_when_curiosity_drifted_up() -> None:
    samantha = card("samantha")

    def questions(curiosity: float) -> int:
        asked = 0
        for seed in range(60):
            memory = PersonMemory("alice", name="Alice", turns=3)
            msg = Message("the weather is nice today", 5, "m5", "alice", "dm:samantha:alice")
            inp = MindInput(samantha, memory, (), msg, read(msg.text), traits={"curiosity": curiosity})
            assert inp.trait("curiosity") == curiosity and inp.trait("warmth") == samantha.trait("warmth")
            compose(inp, seed)
            asked += bool(memory.asked)
        return asked

    assert questions(0.0) < questions(1.0)
