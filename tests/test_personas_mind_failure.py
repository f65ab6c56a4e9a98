"""A mind that fails never leaves a person unanswered, and never contradicts what the
person already saw streamed: the final msg keeps the streamed text and says it was cut."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from persona_util import people, personas, store

from personas.minds.base import Mind, MindInput
from personas.minds.prompt import CUT_OFF, trouble_line

__all__ = ["people", "personas", "store"]  # fixtures, used by name


class Breaks(Mind):
    """A real failure path, not a stand-in for an LLM: it streams `before`, then raises."""

    name = "breaks"

    def __init__(self, before: list[str]) -> None:
        self.before = before

    async def reply(self, inp: MindInput) -> AsyncIterator[str]:
        for chunk in self.before:
            yield chunk
        raise ConnectionError("the endpoint went away")


async def test_failure_before_any_text_gets_the_cards_trouble_line(personas: Any,
                                                                    people: Any) -> None:
    runtime = await personas("samantha")
    worker = runtime.worker("samantha")
    worker.mind = Breaks([])
    alice = await people("alice")
    seq = await alice.say("Tell me about the stars.")
    reply = await alice.reply_to(seq)
    assert worker.card.voice.trouble, "the built-in cards carry their own trouble lines"
    # the line may greet the person by the name the persona knows (here, the token's)
    assert reply.text in {trouble_line(worker.card, name, seq) for name in ("", "alice")}
    assert worker.stats["mind_failures"] == 1


async def test_failure_mid_stream_keeps_what_was_shown(personas: Any, people: Any) -> None:
    runtime = await personas("samantha")
    worker = runtime.worker("samantha")
    worker.mind = Breaks(["The stars ", "are far "])
    alice = await people("alice")
    reply = await alice.ask("Tell me about the stars.")
    assert reply.text == f"The stars are far {CUT_OFF}"
    assert reply.text.startswith("".join(reply.deltas))
