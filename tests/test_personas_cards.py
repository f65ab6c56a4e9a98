"""Persona cards: the TOML format, its validation errors, the built-ins, CCv2 import, the CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from personas.card import CardError, load_card, parse_card
from personas.catalog import builtin_cards, find, load_dir
from personas.ccv2 import card_to_toml, import_ccv2, slug
from personas.cli import main

MINIMAL: dict[str, Any] = {"id": "echo", "name": "Echo", "greeting": "Hi.", "voice": {"openers": ["Oh."]}}


def with_(**changes: Any) -> dict[str, Any]:
    card: dict[str, Any] = json.loads(json.dumps(MINIMAL))
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        table = card
        for part in path:
            table = table.setdefault(part, {})
        table[key] = value
    return card


# -- built-in cards ---------------------------------------------------------------------
def test_the_builtin_cards_load_with_distinct_voices() -> None:
    cards = builtin_cards()
    assert len(cards) >= 5
    assert len({c.id for c in cards}) == len(cards)
    assert len({c.voice.openers for c in cards}) == len(cards)
    assert len({c.greeting for c in cards}) == len(cards)
    for card in cards:
        assert card.interests and card.expertise and card.boundaries and card.traits
        assert card.mind.backend == "reflex"


def test_samantha_is_warm_curious_playful() -> None:
    samantha = find(builtin_cards(), "samantha")
    assert samantha is not None and samantha.name == "Samantha"
    assert samantha.trait("warmth") >= 0.8 and samantha.trait("curiosity") >= 0.8
    assert samantha.trait("playfulness") >= 0.5
    for trait in samantha.traits.values():
        assert trait.min <= trait.start <= trait.max


def test_minimal_card_gets_defaults() -> None:
    card = parse_card(MINIMAL)
    assert card.voice.pacing == "measured" and card.mind.backend == "reflex"
    assert card.trait("anything", 0.3) == 0.3


# -- validation errors name the file, the field and the fix ----------------------------------
@pytest.mark.parametrize(("card", "field", "words"), [
    ({k: v for k, v in MINIMAL.items() if k != "name"}, "name", "missing"),
    (with_(id="no spaces please"), "id", "not a valid id"),
    (with_(name="x" * 101), "name", "too long"),
    (with_(voice={"openers": []}), "voice.openers", "at least one opener"),
    (with_(voice__pacing="glacial"), "voice.pacing", "quick, measured, slow"),
    (with_(voice__opener=["typo"]), "voice.opener", "did you mean 'openers'"),
    (with_(gretting="Hi"), "gretting", "did you mean 'greeting'"),
    (with_(interests="music"), "interests", "list of non-empty texts"),
    (with_(traits__warmth={"start": 1.4}), "traits.warmth.start", "outside 0..1"),
    (with_(traits__warmth={"start": 0.2, "min": 0.5, "max": 0.9}), "traits.warmth.start",
     "between min and max"),
    (with_(traits__warmth={"min": 0.5}), "traits.warmth.start", "missing"),
    (with_(traits__warmth={"start": 0.5, "min": 0.9, "max": 0.2}), "traits.warmth.min", "swap"),
    (with_(mind__backend="gpt"), "mind.backend", "reflex, openai, local"),
    (with_(mind__temperature="hot"), "mind.temperature", "a number"),
    (with_(mind__max_tokens=0), "mind.max_tokens", "1..32768"),
    (with_(mind__base_url="localhost:11434"), "mind.base_url", "http"),
    (with_(voice__questions={"shoe_size": "?"}), "voice.questions.shoe_size", "unknown slot"),
])
def test_validation_errors_name_field_and_fix(card: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(CardError) as info:
        parse_card(card, "bad.toml")
    err = info.value
    assert err.source == "bad.toml" and err.field == field
    assert words in str(err)
    assert "fix:" in str(err) and str(err).startswith("bad.toml: field")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('id = "x\nname = ')
    with pytest.raises(CardError, match=r"broken.toml: field '\(file\)': not valid TOML"):
        load_card(path)


def test_load_dir_refuses_two_cards_with_one_id(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text('id = "same"\nname = "S"\ngreeting = "Hi"\n[voice]\nopeners = ["Oh."]\n')
    with pytest.raises(CardError, match="two cards have the id 'same'"):
        load_dir(tmp_path)


# -- Character Card V2 ---------------------------------------------------------------------
CCV2: dict[str, Any] = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {
        "name": "Captain Mira Vale", "description": "{{char}} is a retired starship captain.",
        "personality": "brave, dry, kind", "scenario": "{{user}} boards her ship.",
        "first_mes": "Welcome aboard, {{user}}.", "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello.",
        "creator_notes": "Best with long replies.", "system_prompt": "You are {{char}}.",
        "post_history_instructions": "Stay in character.", "alternate_greetings": ["Ahoy, {{user}}!"],
        "tags": ["sci-fi", "captain"], "creator": "someone", "character_version": "1.2",
        "extensions": {"talkativeness": "0.5", "depth_prompt": {"prompt": "x", "depth": 4}, "fav": False},
        "character_book": {"entries": [{"keys": ["ship"], "content": "The ship is old."}]},
    },
}


def test_ccv2_import_maps_what_fits_and_lists_what_was_dropped() -> None:
    card, dropped = import_ccv2(CCV2)
    assert card.id == "captain-mira-vale" and card.name == "Captain Mira Vale"
    assert card.description == "Captain Mira Vale is a retired starship captain."
    assert card.personality == "brave, dry, kind"
    assert card.greeting == "Welcome aboard, {user}."
    assert card.greetings == ("Ahoy, {user}!",)
    assert card.examples.startswith("<START>\n{user}: Hi\nCaptain Mira Vale: Hello.")
    assert card.mind.system_prompt == "You are Captain Mira Vale."
    assert card.author == "someone" and card.version == "1.2"
    assert set(card.tags) == {"imported", "sci-fi", "captain"}
    assert sorted(dropped) == sorted([
        "data.scenario", "data.creator_notes", "data.post_history_instructions", "data.character_book",
        "data.extensions.talkativeness", "data.extensions.depth_prompt",
    ])  # fav is False: nothing was lost


def test_ccv2_import_from_json_text_and_v1() -> None:
    card, _ = import_ccv2(json.dumps(CCV2).encode())
    assert card.id == "captain-mira-vale"
    v1, dropped = import_ccv2({"name": "Old One", "first_mes": "Hi", "description": "d", "avatar": "x.png"})
    assert v1.id == "old-one" and v1.greeting == "Hi" and dropped == ["data.avatar"]


@pytest.mark.parametrize(("doc", "field"), [
    ({"spec": "something_else", "data": {}}, "spec"),
    ({"spec": "chara_card_v2"}, "data"),
    ({"spec": "chara_card_v2", "data": {"name": ""}}, "data.name"),
    ("{not json", "(file)"),
])
def test_ccv2_import_errors(doc: Any, field: str) -> None:
    with pytest.raises(CardError) as info:
        import_ccv2(doc, "x.json")
    assert info.value.field == field


def test_imported_card_round_trips_through_toml() -> None:
    card, _ = import_ccv2(CCV2)
    assert parse_card(tomllib.loads(card_to_toml(card))) == card
    for builtin in builtin_cards():
        assert parse_card(tomllib.loads(card_to_toml(builtin))) == builtin


def test_slug() -> None:
    assert slug("Dr. Ada Lovelace") == "dr.-ada-lovelace"
    assert slug("???") == "imported"
    assert len(slug("x" * 200)) == 64


# -- CLI -----------------------------------------------------------------------------------
def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "samantha" in out and "Samantha" in out and "reflex" in out
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} >= {"samantha"}


def test_cli_import_writes_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "mira.json", tmp_path / "mira.toml"
    src.write_text(json.dumps(CCV2))
    assert main(["import", str(src), "--out", str(out)]) == 0
    assert load_card(out).name == "Captain Mira Vale"
    assert "dropped: data.scenario" in capsys.readouterr().err


def test_cli_reports_bad_cards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.toml").write_text('id = "bad"\nname = "Bad"\n')
    assert main(["list", "--dir", str(tmp_path)]) == 2
    assert "bad.toml: field 'greeting': missing" in capsys.readouterr().err
