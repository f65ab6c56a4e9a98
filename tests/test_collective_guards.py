"""Each collective guard against personas built to break it, on a real hub.

A hand-driven persona connection ("driver") opens threads; personas whose policy always
answers try to talk forever. The guards, not the policies, must end it — and say so in the
room with one guard note, which the observer sees and nobody answers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from collective_util import (
    Watcher,
    bot_card,
    collective,
    config,
    driver,
    guards,
    open_thread,
    watcher,
)
from schema_util import validator_for

from clients.sdk import Client
from personas.collective.policy import Incoming, Policy, Utterance, View

__all__ = ["collective", "driver", "watcher"]  # fixtures, used by name

Start = Callable[..., Any]
WORDS = ("alpha bravo charlie delta echoes foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


class AlwaysThank(Policy):
    """Answers every message with a thank-you: two of these would thank each other forever."""

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        return Utterance(f"Thank you so much, {msg.sender_name}! That means a lot.", "answer")


class AlwaysAgree(Policy):
    """Answers with (nearly) the same words every time: an echo with content in it."""

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        text = f"{view.me.name} agrees completely about chess openings, {msg.sender_name}."
        return Utterance(text, "answer")


class AlwaysNew(Policy):
    """Always answers, and never repeats itself: only turn, time and rate bounds can stop it."""

    counter = itertools.count()

    def respond(self, msg: Incoming, view: View) -> Utterance | None:
        n = next(self.counter)
        words = " ".join(WORDS[(3 * n + i) % len(WORDS)] + str(n) for i in range(3))
        return Utterance(f"Point {n}: {words}.", "answer")


def msgs_of(watch: Watcher, thread: str, persona_ids: set[str]) -> list[dict[str, Any]]:
    return [m for m in watch.thread(thread) if m["from"]["id"] in persona_ids]


def one_note(watch: Watcher, thread: str, guard: str) -> dict[str, Any]:
    """The thread's single guard note, by one of the looping personas; its meta."""
    [note] = watch.notes(thread)
    assert note["from"]["id"] != "driver" and note["meta"]["guard"] == guard, note
    assert note["cid"].startswith("g-") and note.get("reply_to") is None
    validator_for("guard_note_meta").validate(note["meta"])  # as docs/protocol.schema.json says
    return dict(note["meta"])


async def test_two_thankers_are_stopped_by_the_echo_detector(collective: Start, driver: Client,
                                                             watcher: Watcher) -> None:
    cards = [bot_card("thanker-a", "Ada"), bot_card("thanker-b", "Bea")]
    runtime = await collective(cards, config(guards(max_turns=50)),
                               policies={c.id: AlwaysThank() for c in cards})
    await open_thread(driver, "t-thanks")
    await watcher.wait_for(lambda _: len(watcher.thread("t-thanks")) >= 2)
    await watcher.quiet()
    said = msgs_of(watcher, "t-thanks", {"thanker-a", "thanker-b"})
    assert 1 <= len(said) <= 2, [m["text"] for m in said]  # one thank-you, not a loop
    status = runtime.collective_status()
    assert status is not None and status["refused"].get("echo", 0) >= 1
    assert status["threads_closed"].get("echo") == 1
    meta = one_note(watcher, "t-thanks", "echo")
    assert meta == {"kind": "guard", "guard": "echo", "thread": "t-thanks", "turns": 1 + len(said),
                    "max_turns": 50}


async def test_near_duplicates_with_content_are_an_echo_too(collective: Start, driver: Client,
                                                            watcher: Watcher) -> None:
    cards = [bot_card("agree-a", "Ada"), bot_card("agree-b", "Bea")]
    runtime = await collective(cards, config(guards(max_turns=50)),
                               policies={c.id: AlwaysAgree() for c in cards})
    await open_thread(driver, "t-agree", "Which chess opening do you like?")
    await watcher.wait_for(lambda _: len(watcher.thread("t-agree")) >= 2)
    await watcher.quiet()
    assert len(msgs_of(watcher, "t-agree", {"agree-a", "agree-b"})) <= 2
    status = runtime.collective_status()
    assert status is not None and status["threads_closed"].get("echo") == 1
    assert one_note(watcher, "t-agree", "echo")["guard"] == "echo"


async def test_a_loop_that_never_repeats_stops_at_max_turns(collective: Start, driver: Client,
                                                            watcher: Watcher) -> None:
    cards = [bot_card("talker-a", "Ada"), bot_card("talker-b", "Bea")]
    runtime = await collective(cards, config(guards(max_turns=6)),
                               policies={c.id: AlwaysNew() for c in cards})
    await open_thread(driver, "t-turns")
    await watcher.wait_for(lambda _: len(watcher.thread("t-turns")) >= 6)
    await watcher.quiet()
    thread = watcher.thread("t-turns")
    assert len(thread) == 6, [m["text"] for m in thread]  # the driver's opening counts as turn 1
    assert sorted(m["meta"]["turn"] for m in thread[1:]) == [2, 3, 4, 5, 6]
    status = runtime.collective_status()
    assert status is not None and status["threads_closed"].get("max_turns") == 1
    meta = one_note(watcher, "t-turns", "max_turns")
    assert (meta["turns"], meta["max_turns"]) == (6, 6)
    assert runtime.collective_status() == status  # the note was no turn, and nobody answered it


async def test_a_slow_endless_thread_stops_at_max_duration(collective: Start, driver: Client,
                                                           watcher: Watcher) -> None:
    cards = [bot_card("slow-a", "Ada"), bot_card("slow-b", "Bea")]
    conf = config(guards(max_duration=1.0), think=(0.15, 0.15))
    runtime = await collective(cards, conf, policies={c.id: AlwaysNew() for c in cards})
    await open_thread(driver, "t-slow")
    await watcher.wait_for(lambda _: len(watcher.thread("t-slow")) >= 3)
    await watcher.quiet(gap=0.8)
    thread = watcher.thread("t-slow")
    assert thread[-1]["ts"] - thread[0]["ts"] <= 1000 + 150  # 150 ms: admitted just before the bound
    status = runtime.collective_status()
    assert status is not None and status["threads_closed"].get("max_duration") == 1
    assert one_note(watcher, "t-slow", "max_duration")["max_duration"] == 1.0


async def test_an_eager_persona_is_held_by_its_cooldown(collective: Start, driver: Client,
                                                        watcher: Watcher) -> None:
    runtime = await collective([bot_card("eager", "Eve")], config(guards(cooldown=0.4)),
                               policies={"eager": AlwaysNew()})
    for i in range(10):  # ten threads in 1 s: one answer per 0.4 s at most
        await open_thread(driver, f"t-cool-{i}")
        await asyncio.sleep(0.1)
    await watcher.quiet()
    said = watcher.by("eager")
    assert 2 <= len(said) <= 3, len(said)
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(said)]
    assert all(gap >= 380 for gap in gaps), gaps  # hub timestamps: a few ms of jitter
    held = runtime.collective_status()
    assert held is not None and held["refused"].get("cooldown", 0) >= 6
    assert watcher.notes() == []  # pacing one persona is no event worth a note


async def test_an_eager_persona_is_held_by_its_rate(collective: Start, driver: Client,
                                                    watcher: Watcher) -> None:
    runtime = await collective([bot_card("eager", "Eve")], config(guards(rate_turns=3, rate_window=60.0)),
                               policies={"eager": AlwaysNew()})
    for i in range(10):
        await open_thread(driver, f"t-rate-{i}")
    await watcher.wait_for(lambda _: len(watcher.by("eager")) >= 3)
    await watcher.quiet()
    assert len(watcher.by("eager")) == 3
    held = runtime.collective_status()
    assert held is not None and held["refused"].get("rate") == 7
    assert runtime.status()[0]["collective"]["held"] == {"rate": 7}
    assert watcher.notes() == []


async def test_the_global_budget_holds_under_many_threads(collective: Start, driver: Client,
                                                          watcher: Watcher) -> None:
    cards = [bot_card(f"bot-{i}", f"Bot{i}") for i in range(3)]
    runtime = await collective(cards, config(guards(budget_turns=5, budget_window=60.0)),
                               policies={c.id: AlwaysNew() for c in cards})
    for i in range(12):  # 12 threads x 3 eager personas, and they answer each other too
        await open_thread(driver, f"t-budget-{i}")
    await watcher.wait_for(lambda msgs: sum(m["from"]["id"] != "driver" for m in msgs) >= 5)
    await watcher.quiet()
    assert sum(m["from"]["id"] != "driver" for m in watcher.turns) == 5
    status = runtime.collective_status()
    assert status is not None and status["admitted"] == 5 and status["refused"]["budget"] >= 12
    [note] = watcher.notes()  # one per budget window, however many turns it held
    assert {k: note["meta"][k] for k in ("guard", "used", "limit", "window", "chatter")} == \
        {"guard": "budget", "used": 5, "limit": 5, "window": 60.0, "chatter": False}
