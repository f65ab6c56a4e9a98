"""The chat prompt for model-backed minds, built from a :class:`MindInput`. Pure functions.

The system message carries who the persona is (the card) and what it knows of the person
(their memory); then come the recent turns and the message to answer. It all has to fit the
model's context next to the reply, so turns are dropped oldest first; the system message and
the newest message always stay. Tokens are estimated (about four characters each): cheap,
no tokenizer to ship, and the margin absorbs the error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, TypedDict

from personas.card import Card
from personas.memory import Fact, PersonMemory
from personas.minds.base import MindInput, Turn

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # role markers and separators each message costs in a chat template
MAX_EXAMPLES = 600  # characters of the card's sample dialogue: flavour, not the whole budget
MAX_LISTED = 8
# Estimates run low on names, numbers and punctuation; a prompt over the context is refused
# outright (HTTP 400), every turn after, so the budget keeps a margin.
SAFETY = 0.85  # likes, dislikes, habits: the newest few are what a reply can use

TROUBLE = "Sorry, {name}, I'm having trouble thinking right now. Give me a moment and say that again?"
CUT_OFF = "… sorry, I lost my train of thought there."


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def message_tokens(message: ChatMessage) -> int:
    return estimate_tokens(message["content"]) + MESSAGE_OVERHEAD


def build_messages(inp: MindInput, *, context_tokens: int, max_tokens: int) -> list[ChatMessage]:
    """System, then as many recent turns as fit, then the message to answer."""
    system: ChatMessage = {"role": "system", "content": system_prompt(inp)}
    newest: ChatMessage = {"role": "user", "content": inp.message.text}
    budget = int(context_tokens * SAFETY) - max_tokens - message_tokens(system) - message_tokens(newest)
    return [system, *fit_turns(inp.turns, budget), newest]


def fit_turns(turns: Sequence[Turn], budget: int) -> list[ChatMessage]:
    """The newest turns whose estimated tokens fit ``budget``, oldest first."""
    kept: list[ChatMessage] = []
    for turn in reversed(turns):
        message: ChatMessage = {"role": "user" if turn.who == "person" else "assistant",
                                "content": turn.text}
        budget -= message_tokens(message)
        if budget < 0:
            break  # older turns than one that does not fit would leave a gap in the dialogue
        kept.append(message)
    kept.reverse()
    # A chat that opens with the persona's line after a user-less gap confuses small models.
    while kept and kept[0]["role"] == "assistant":
        kept.pop(0)
    return kept


def system_prompt(inp: MindInput) -> str:
    card, memory = inp.card, inp.memory
    parts = [_persona(card), _person(memory), _this_turn(inp)]
    parts.append(f"You are talking with {inp.conversations} "
                 f"{'person' if inp.conversations == 1 else 'people'} right now; "
                 "if asked, give that number honestly.")
    parts.append("Reply in your own voice, briefly (one to three sentences), and use what you "
                 "know about them when it fits. Never claim to be human.")
    return "\n\n".join(p for p in parts if p)


def _persona(card: Card) -> str:
    lines = [f"You are {card.name}." + (f" {card.description}" if card.description else "")]
    if card.personality:
        lines.append(f"Personality: {card.personality}.")
    voice = card.voice
    style = [f"pacing {voice.pacing}"]
    if voice.openers:
        style.append("openers like " + ", ".join(f'"{o}"' for o in voice.openers[:4]))
    if voice.phrases:
        style.append("phrases like " + ", ".join(f'"{p}"' for p in voice.phrases[:3]))
    lines.append("How you talk: " + "; ".join(style) + ".")
    if card.interests:
        lines.append("You love talking about " + ", ".join(card.interests[:8]) + ".")
    if card.boundaries:
        lines.append("Your boundaries:\n" + "\n".join(f"- {b}" for b in card.boundaries))
    if card.mind.system_prompt:
        lines.append(card.mind.system_prompt)
    if card.examples:
        lines.append("Example of how you talk:\n" + card.examples[:MAX_EXAMPLES])
    return "\n".join(lines)


def _person(memory: PersonMemory) -> str:
    name = memory.known_name
    lines = [f"The person you are talking with is called {name}." if name
             else "You do not know the person's name yet."]
    for label, facts in (("They like", memory.likes()), ("They dislike", memory.dislikes()),
                         ("Their habits", memory.habits())):
        if facts:
            lines.append(f"{label}: " + "; ".join(_plain(f) for f in facts[-MAX_LISTED:]) + ".")
    if memory.turns:
        mood = memory.mood
        lines.append(f"Their mood lately: {mood.label}" + (f" ({mood.word})" if mood.word else "") + ".")
    if memory.summary:
        # The summary speaks to the person ("you live in Lisbon"); said so, or a small model
        # takes "you" for itself.
        lines.append(f"Your notes on them, as you would say them to them: {memory.summary}.")
    return "\n".join(lines)


def _this_turn(inp: MindInput) -> str:
    lines = []
    if inp.learned:
        lines.append("In their new message they told you: " + "; ".join(f.say() for f in inp.learned) + ".")
    if inp.forgotten:
        # The facts are gone from memory already; the model must only confirm, never repeat them.
        lines.append(f"They asked you to forget {len(inp.forgotten)} thing(s); it is done. "
                     "Confirm it without repeating what was forgotten.")
    return "\n".join(lines)


def _plain(fact: Fact) -> str:
    if fact.kind == "favourite":
        return f"favourite {fact.subject}: {fact.value}"
    if fact.kind == "habit":
        return f"{fact.value} ({fact.subject})" if fact.subject else fact.value
    return fact.value


def trouble_line(card: Card, name: str, key: int = 0) -> str:
    """What the persona says when its model fails: one of the card's own lines when it has any."""
    lines = card.voice.trouble or (TROUBLE,)
    return fill_name(lines[key % len(lines)], name)


def fill_name(line: str, name: str) -> str:
    if not name:
        # "Oh, {name}, my …" -> "Oh, my …": drop the name and the comma that framed it.
        line = re.sub(r",?\s*\{name\}(?=[.!?,])|\{name\},?\s*", "", line)
    line = line.replace("{name}", name)
    return line[:1].upper() + line[1:]
