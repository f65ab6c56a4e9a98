"""Import of community character cards: SillyTavern's Character Card V2 (``chara_card_v2``).

What fits an OS1 card is mapped; everything else is reported back by name as dropped, so
the person importing knows exactly what did not come along. V1 cards (the same fields at
top level, no ``spec``) and V3 cards (a superset of V2) are read the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from personas.card import MAX_NAME, Card, CardError, parse_card

TEXT_LIMIT = 8000  # parse_card's limit per text field
SPECS = ("chara_card_v2", "chara_card_v3")
# CCv2 field -> OS1 card field. Fields absent here are dropped (and reported).
_TEXT_MAP = {"description": "description", "personality": "personality", "first_mes": "greeting",
             "mes_example": "examples", "creator": "author", "character_version": "version"}
_DROPPED_ALWAYS = ("scenario", "creator_notes", "post_history_instructions", "character_book")
_GENERIC_VOICE = {"openers": ["Mm.", "I see.", "Oh?", "Go on."], "pacing": "measured"}


def import_ccv2(raw: Mapping[str, Any] | str | bytes, source: str = "<card.json>") -> tuple[Card, list[str]]:
    """A Card made from a Character Card V2 and the list of fields that were dropped."""
    doc = _decode(raw, source)
    data = _data(doc, source)
    name = _name(data, source)
    card: dict[str, Any] = {"id": slug(name), "name": name, "voice": dict(_GENERIC_VOICE),
                            "tags": ["imported"], "mind": {"backend": "reflex"}}
    dropped: list[str] = []
    for src, dst in _TEXT_MAP.items():
        text = _text(data, src, name, dropped)
        if text:
            card[dst] = text
    card.setdefault("greeting", f"Hello. I'm {name}.")
    greetings = [_macros(g, name) for g in _strings(data, "alternate_greetings")]
    card["greetings"] = [g[:TEXT_LIMIT] for g in greetings if g.strip()]
    card["tags"] += [t for t in _strings(data, "tags") if t.strip()]
    prompt = _text(data, "system_prompt", name, dropped)
    if prompt:
        card["mind"]["system_prompt"] = prompt
    dropped += [f"data.{k}" for k in _DROPPED_ALWAYS if _present(data.get(k))]
    extensions = data.get("extensions")
    if isinstance(extensions, Mapping):
        dropped += [f"data.extensions.{k}" for k, v in extensions.items() if _present(v)]
    known = {"name", "alternate_greetings", "tags", "system_prompt", "extensions",
             *_TEXT_MAP, *_DROPPED_ALWAYS}
    dropped += [f"data.{k}" for k, v in data.items() if k not in known and _present(v)]
    return parse_card(card, source), dropped


def slug(name: str) -> str:
    """An id for the hub from a display name: "Dr. Ada Lovelace" -> "dr.-ada-lovelace"."""
    s = re.sub(r"[^A-Za-z0-9_.@-]+", "-", name.strip().lower()).strip("-._@")
    return s[:64].rstrip("-._@") or "imported"


def _decode(raw: Mapping[str, Any] | str | bytes, source: str) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CardError(source, "(file)", f"not valid JSON: {exc}", "export the card as JSON") from None
    if not isinstance(doc, dict):
        raise CardError(source, "(file)", "the JSON is not an object", "export the card as JSON")
    return doc


def _data(doc: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    spec = doc.get("spec")
    if spec is None and "name" in doc:
        return doc  # V1: the fields live at top level
    if spec not in SPECS:
        raise CardError(source, "spec", f"{spec!r} is not a character card spec",
                        'expected "chara_card_v2" (a SillyTavern character card)')
    data = doc.get("data")
    if not isinstance(data, Mapping):
        raise CardError(source, "data", "missing or not an object", "a V2 card keeps its fields under data")
    return data


def _name(data: Mapping[str, Any], source: str) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CardError(source, "data.name", "missing or empty", "give the character a name")
    if len(name.strip()) > MAX_NAME:
        raise CardError(source, "data.name", f"longer than {MAX_NAME} characters", "shorten the name")
    return name.strip()


def _text(data: Mapping[str, Any], key: str, name: str, dropped: list[str]) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        return ""
    text = _macros(value, name).strip()
    if len(text) > TEXT_LIMIT:
        dropped.append(f"data.{key} (cut to {TEXT_LIMIT} characters)")
        text = text[:TEXT_LIMIT]
    return text


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _macros(text: str, name: str) -> str:
    """SillyTavern macros: {{char}} is the character, {{user}} becomes OS1's {user}."""
    text = re.sub(r"\{\{\s*char\s*\}\}|<BOT>", name, text, flags=re.IGNORECASE)
    return re.sub(r"\{\{\s*user\s*\}\}|<USER>", "{user}", text, flags=re.IGNORECASE)


def _present(value: Any) -> bool:
    """Whether dropping ``value`` loses anything: defaults (empty, false) carry nothing."""
    return value is not False and value not in (None, "", [], {})


def card_to_toml(card: Card) -> str:
    """Write a card back as TOML (for `os1 personas import`); parse_card reads it back equal."""
    lines: list[str] = []
    for key in ("id", "name", "tagline", "greeting", "description", "personality", "examples",
                "author", "version"):
        if getattr(card, key):
            lines.append(f"{key} = {_toml_str(getattr(card, key))}")
    for key in ("greetings", "interests", "expertise", "boundaries", "tags"):
        if getattr(card, key):
            lines.append(f"{key} = {_toml_list(getattr(card, key))}")
    v = card.voice
    lines += ["", "[voice]", f'pacing = "{v.pacing}"', f"openers = {_toml_list(v.openers)}"]
    for key in ("phrases", "empathy", "delight", "trouble"):
        if getattr(v, key):
            lines.append(f"{key} = {_toml_list(getattr(v, key))}")
    if v.questions:
        lines += ["", "[voice.questions]"] + [f"{k} = {_toml_str(q)}" for k, q in v.questions.items()]
    if v.topics:
        lines += ["", "[voice.topics]"] + [f"{_toml_str(k)} = {_toml_list(t)}" for k, t in v.topics.items()]
    for tname, t in card.traits.items():
        lines += ["", f"[traits.{_toml_str(tname)}]", f"start = {t.start}", f"min = {t.min}",
                  f"max = {t.max}"]
    m = card.mind
    lines += ["", "[mind]", f'backend = "{m.backend}"', f"temperature = {m.temperature}",
              f"max_tokens = {m.max_tokens}"]
    lines += [f"{k} = {_toml_str(getattr(m, k))}"
              for k in ("model", "base_url", "system_prompt", "api_key_env") if getattr(m, k)]
    return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_toml_str(x) for x in items) + "]"
