"""End to end: personas hold a collective exchange on their own, within its budget.

Four built-in personas start embedded with the collective on (small budgets, a seed). They
greet and welcome each other; then a person asks Samantha about gardening — outside her
expertise — and she consults Juniper, whose answer comes back to the person. An observer
watching `collective:*` sees it all happen, and sees it end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from collective_util import Watcher, bot_card, builtin, collective, config, driver, watcher
from conftest import HubServer
from persona_util import eventually, people
from schema_util import validator_for

from clients.sdk import Client
from personas.card import Card
from personas.collective import CollectiveConfig, GuardConfig
from personas.collective.speech import Prompt
from personas.runtime import start_embedded

__all__ = ["collective", "driver", "people", "watcher"]  # fixtures, used by name

BUDGET = GuardConfig(max_turns=5, max_duration=20.0, cooldown=0.2, rate_turns=6, rate_window=60.0,
                     budget_turns=14, budget_window=60.0, chatter_share=0.5)
CONFIG = CollectiveConfig(guards=BUDGET, seed=3, think=(0.02, 0.08), greet_delay=(0.0, 0.1),
                          welcome_chance=1.0, consult_wait=3.0, reflect=False, sweep_every=0.2)


async def test_personas_hold_a_collective_exchange_on_their_own(hub: HubServer, people: Callable[..., Any],
                                                                watcher: Watcher) -> None:
    cards = builtin("samantha", "atlas", "nova", "juniper")
    runtime = await start_embedded(hub.url, hub.settings.secret, cards, collective=CONFIG)
    try:
        await watcher.wait_for(lambda _: len(watcher.kinds("greet")) == 4)
        await watcher.quiet(gap=0.4)
        ana = await people("ana", name="Ana")
        reply = await ana.ask("Do you know anything about gardening?")
        assert "Juniper" in reply.text  # she asked, and says so

        await watcher.wait_for(lambda _: bool(watcher.kinds("close")))
        await watcher.quiet(gap=0.8)  # the collective falls silent by itself
        personas = [m for m in watcher.turns if m["from"]["role"] == "persona"]
        kinds = Counter(m["meta"]["kind"] for m in personas)
        for m in personas:  # every turn's meta as docs/protocol.schema.json describes it
            validator_for("collective_meta").validate(m["meta"])
        assert kinds["greet"] == 4 and kinds["welcome"] >= 1
        ask, answer, close = (watcher.kinds(k)[0] for k in ("ask", "answer", "close"))
        assert ask["room"] == answer["room"] == close["room"] == "collective:gardening"
        speakers = (ask["from"]["id"], answer["from"]["id"], close["from"]["id"])
        assert speakers == ("samantha", "juniper", "samantha")
        assert ask["meta"]["to"] == ["juniper"] and answer["text"] in reply.text

        # Within budget: every turn, every thread, and the chatter's share of the budget.
        assert len(personas) <= BUDGET.budget_turns
        assert kinds["greet"] + kinds["welcome"] <= BUDGET.budget_turns * BUDGET.chatter_share
        assert max(Counter(m["meta"]["thread"] for m in personas).values()) <= BUDGET.max_turns
        status = runtime.collective_status()
        assert status is not None and status["admitted"] == len(personas)

        samantha = runtime.worker("samantha").collective
        assert samantha is not None

        async def left() -> bool:  # the opener left the topic room once the thread closed
            return bool(samantha.status()["rooms"] == 0)

        await eventually(left)
        assert samantha.status()["said"]["consults_answered"] == 1
    finally:
        await runtime.stop()


class ThinkingMind:
    """A mind that writes its own collective answers (what a model-backed mind can offer)."""

    def __init__(self) -> None:
        self.prompts: list[Prompt] = []

    async def collective_reply(self, card: Card, prompt: Prompt) -> str:
        self.prompts.append(prompt)
        return f"{card.name}, thinking about {prompt.topic} for {prompt.sender}."


async def test_a_mind_may_write_its_own_collective_answer(collective: Callable[..., Any], driver: Client,
                                                          watcher: Watcher) -> None:
    mind = ThinkingMind()
    await collective([bot_card("sage", "Sage")], config(), minds={"sage": mind})
    await driver.send("collective:all", "Sage, what about chess?",
                      meta={"thread": "t-q", "kind": "ask", "topic": "chess", "to": ["sage"]})
    await watcher.wait_for(lambda _: len(watcher.thread("t-q")) == 2)
    assert watcher.thread("t-q")[1]["text"] == "Sage, thinking about chess for Driver."
    assert [(p.kind, p.text) for p in mind.prompts] == [("ask", "Sage, what about chess?")]
