"""Persona cards: who a persona is, read from TOML and validated. Pure, no I/O but reading.

A card file looks like ``personas/cards/samantha.toml``. Every problem is a
:class:`CardError` naming the file, the field and how to fix it, because a card is written by
hand and the person who wrote it needs to know which line to change.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

# Same shape as the hub's user ids (docs/protocol.md): a card id becomes the token's `sub`.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MAX_NAME = 100  # the hub refuses longer display names in tokens
BACKENDS = ("reflex", "openai", "local")
PACINGS = ("quick", "measured", "slow")
SLOTS = ("name", "home", "job", "like", "favourite", "habit", "mood")

Backend = Literal["reflex", "openai", "local"]
Pacing = Literal["quick", "measured", "slow"]


class CardError(ValueError):
    """A card that cannot be used: says where (file, field), what, and the fix."""

    def __init__(self, source: str, where: str, problem: str, fix: str) -> None:
        self.source, self.field, self.problem, self.fix = source, where, problem, fix
        super().__init__(f"{source}: field '{where}': {problem} (fix: {fix})")


@dataclass(frozen=True)
class Voice:
    """How the persona talks. Lists are picked from deterministically by the reflex mind."""

    openers: tuple[str, ...]
    phrases: tuple[str, ...] = ()
    empathy: tuple[str, ...] = ()
    delight: tuple[str, ...] = ()
    # Said when a model-backed mind cannot think (endpoint down or too slow), so even the
    # failure sounds like this persona; {name} is the person's name.
    trouble: tuple[str, ...] = ()
    questions: Mapping[str, str] = field(default_factory=dict)  # slot -> follow-up question
    topics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # keyword -> lines
    pacing: Pacing = "measured"


@dataclass(frozen=True)
class Trait:
    """A trait's starting value and the bounds its drift must stay within (all in 0..1)."""

    start: float
    min: float = 0.0
    max: float = 1.0


@dataclass(frozen=True)
class MindSettings:
    backend: Backend = "reflex"
    model: str = ""
    temperature: float = 0.7
    max_tokens: int = 256
    base_url: str = ""
    system_prompt: str = ""
    # The name of the environment variable holding this card's API key: a key never goes in
    # a card file, which is shared and committed.
    api_key_env: str = ""


@dataclass(frozen=True)
class Card:
    id: str
    name: str
    greeting: str
    voice: Voice
    tagline: str = ""
    description: str = ""
    personality: str = ""
    examples: str = ""  # sample dialogue, for model-backed minds
    greetings: tuple[str, ...] = ()  # alternates to `greeting`
    interests: tuple[str, ...] = ()
    expertise: tuple[str, ...] = ()
    boundaries: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    author: str = ""
    version: str = ""
    traits: Mapping[str, Trait] = field(default_factory=dict)
    mind: MindSettings = field(default_factory=MindSettings)

    def trait(self, name: str, default: float = 0.5) -> float:
        trait = self.traits.get(name)
        return trait.start if trait is not None else default


# -- reading -------------------------------------------------------------------------------

def load_card(path: str | Path) -> Card:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CardError(path.name, "(file)", f"not valid TOML: {exc}", "check quotes and brackets") from None
    except OSError as exc:
        raise CardError(str(path), "(file)", f"cannot read: {exc.strerror}", "check the path") from None
    return parse_card(data, path.name)


def parse_card(data: Mapping[str, Any], source: str = "<card>") -> Card:
    """Validate a decoded card (TOML table or an equivalent dict) into a :class:`Card`."""
    v = _Validator(source)
    v.keys(data, "", _TOP_KEYS)
    card_id = v.text(data, "id", required=True)
    if not ID_RE.fullmatch(card_id):
        v.fail("id", f"{card_id!r} is not a valid id",
               "use 1-64 letters, digits, _ . @ - starting with a letter or digit")
    name = v.text(data, "name", required=True, limit=MAX_NAME)
    return Card(
        id=card_id,
        name=name,
        greeting=v.text(data, "greeting", required=True),
        voice=_voice(v, v.table(data, "voice", required=True)),
        tagline=v.text(data, "tagline"),
        description=v.text(data, "description"),
        personality=v.text(data, "personality"),
        examples=v.text(data, "examples"),
        greetings=v.texts(data, "greetings"),
        interests=v.texts(data, "interests"),
        expertise=v.texts(data, "expertise"),
        boundaries=v.texts(data, "boundaries"),
        tags=v.texts(data, "tags"),
        author=v.text(data, "author"),
        version=v.text(data, "version"),
        traits=_traits(v, v.table(data, "traits")),
        mind=_mind(v, v.table(data, "mind")),
    )


_TOP_KEYS = ("id", "name", "greeting", "voice", "tagline", "description", "personality", "examples",
             "greetings", "interests", "expertise", "boundaries", "tags", "author", "version",
             "traits", "mind")
_VOICE_KEYS = ("openers", "phrases", "empathy", "delight", "trouble", "questions", "topics", "pacing")
_MIND_KEYS = ("backend", "model", "temperature", "max_tokens", "base_url", "system_prompt", "api_key_env")


def _voice(v: _Validator, t: Mapping[str, Any]) -> Voice:
    at = "voice"
    v.keys(t, at, _VOICE_KEYS)
    openers = v.texts(t, "openers", at)
    if not openers:
        v.fail("voice.openers", "missing or empty", 'give at least one opener, e.g. openers = ["Oh, hi."]')
    questions = v.table(t, "questions", at)
    for slot in questions:
        if slot not in SLOTS:
            v.fail(f"voice.questions.{slot}", "unknown slot", f"use one of {', '.join(SLOTS)}")
    topics = v.table(t, "topics", at)
    return Voice(
        openers=openers,
        phrases=v.texts(t, "phrases", at),
        empathy=v.texts(t, "empathy", at),
        delight=v.texts(t, "delight", at),
        trouble=v.texts(t, "trouble", at),
        questions={slot: v.text(questions, slot, "voice.questions", required=True) for slot in questions},
        topics={k.lower(): v.texts(topics, k, "voice.topics") for k in topics},
        pacing=cast(Pacing, v.choice(t, "pacing", at, PACINGS, "measured")),
    )


def _traits(v: _Validator, t: Mapping[str, Any]) -> dict[str, Trait]:
    traits: dict[str, Trait] = {}
    for name in t:
        spec = v.table(t, name, "traits", required=True)
        at = f"traits.{name}"
        v.keys(spec, at, ("start", "min", "max"))
        start = v.unit(spec, "start", at, None)
        low, high = v.unit(spec, "min", at, 0.0), v.unit(spec, "max", at, 1.0)
        if low > high:
            v.fail(f"{at}.min", f"min {low} is above max {high}", "swap them")
        if not low <= start <= high:
            v.fail(f"{at}.start", f"{start} is outside [min, max] = [{low}, {high}]",
                   "set start between min and max")
        traits[name] = Trait(start, low, high)
    return traits


def _mind(v: _Validator, t: Mapping[str, Any]) -> MindSettings:
    at = "mind"
    v.keys(t, at, _MIND_KEYS)
    temperature = v.number(t, "temperature", at, 0.7)
    if not 0.0 <= temperature <= 2.0:
        v.fail("mind.temperature", f"{temperature} is out of range", "use a value from 0 to 2")
    max_tokens = v.number(t, "max_tokens", at, 256)
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= 32768:
        v.fail("mind.max_tokens", f"{max_tokens!r} is not a whole number in 1..32768",
               "e.g. max_tokens = 256")
    base_url = v.text(t, "base_url", at)
    if base_url and not base_url.startswith(("http://", "https://")):
        v.fail("mind.base_url", f"{base_url!r} is not an http(s) URL", 'e.g. "http://127.0.0.1:11434/v1"')
    return MindSettings(
        backend=cast(Backend, v.choice(t, "backend", at, BACKENDS, "reflex")),
        model=v.text(t, "model", at),
        temperature=float(temperature),
        max_tokens=int(max_tokens),
        base_url=base_url,
        system_prompt=v.text(t, "system_prompt", at),
        api_key_env=_env_name(v, v.text(t, "api_key_env", at)),
    )


def _env_name(v: _Validator, name: str) -> str:
    if name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        v.fail("mind.api_key_env", f"{name!r} is not an environment variable name",
               'name the variable, not the key: api_key_env = "OPENAI_API_KEY"')
    return name


class _Validator:
    """Typed getters that raise CardError naming `source` and the dotted field (`at.key`)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, fix: str) -> NoReturn:
        raise CardError(self.source, where, problem, fix)

    def keys(self, t: Mapping[str, Any], at: str, known: tuple[str, ...]) -> None:
        for key in t:
            if key not in known:
                near = difflib.get_close_matches(key, known, n=1)
                fix = f"did you mean '{near[0]}'?" if near else f"known fields: {', '.join(known)}"
                self.fail(_at(at, key), "unknown field", fix)

    def text(self, t: Mapping[str, Any], key: str, at: str = "", *, required: bool = False,
             limit: int = 8000) -> str:
        value = t.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(_at(at, key), "missing" if value is None else f"expected text, got {value!r}",
                      f'write it as {key} = "…"')
        text = value.strip()
        if len(text) > limit:
            self.fail(_at(at, key), f"{len(text)} characters is too long", f"keep it under {limit}")
        return text

    def texts(self, t: Mapping[str, Any], key: str, at: str = "") -> tuple[str, ...]:
        value = t.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
            self.fail(_at(at, key), f"expected a list of non-empty texts, got {value!r}"[:200],
                      f'write it as {key} = ["…", "…"]')
        return tuple(x.strip() for x in value)

    def table(self, t: Mapping[str, Any], key: str, at: str = "", *, required: bool = False
              ) -> Mapping[str, Any]:
        value = t.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            problem = "missing table" if value is None else f"expected a table, got {value!r}"[:200]
            self.fail(_at(at, key), problem, f"add a [{_at(at, key)}] section")
        return cast(Mapping[str, Any], value)

    def number(self, t: Mapping[str, Any], key: str, at: str, default: float) -> float:
        value = t.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(_at(at, key), f"expected a number, got {value!r}", "write a number without quotes")
        return cast(float, value)

    def unit(self, t: Mapping[str, Any], key: str, at: str, default: float | None) -> float:
        if default is None and t.get(key) is None:
            self.fail(_at(at, key), "missing", "give a starting value from 0 to 1")
        value = float(self.number(t, key, at, default or 0.0))
        if not 0.0 <= value <= 1.0:
            self.fail(_at(at, key), f"{value} is outside 0..1", "traits are fractions from 0 to 1")
        return value

    def choice(self, t: Mapping[str, Any], key: str, at: str, options: tuple[str, ...], default: str) -> str:
        value = t.get(key)
        if value is None:
            return default
        if value not in options:
            self.fail(_at(at, key), f"{value!r} is not one of {', '.join(options)}",
                      f'e.g. {key} = "{default}"')
        return cast(str, value)


def _at(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key
