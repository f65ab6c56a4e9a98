"""Validate protocol v1 frames against docs/protocol.schema.json.

Used by tests/test_schema_examples.py and by tests that capture real frames from a
running hub. Both helpers raise ``jsonschema.ValidationError`` when a frame does not
match; the error is the most specific one available (when ``t`` names a known frame
type, the error comes from that frame's own definition rather than from the ``oneOf``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_PATH = Path(__file__).parent.parent / "docs" / "protocol.schema.json"

# `t` values that exist in both directions map to suffixed definitions.
_CLIENT_DEFS = {"delta": "delta_request", "history": "history_request", "typing": "typing_request"}
_SERVER_DEFS = {"delta": "delta_event", "history": "history_reply", "typing": "typing_event"}


@cache
def load_schema() -> dict[str, Any]:
    """The protocol schema, loaded once."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@cache
def _registry() -> Registry:
    schema = load_schema()
    resource = Resource.from_contents(schema, default_specification=DRAFT202012)
    return Registry().with_resource(schema["$id"], resource)


@cache
def validator_for(definition: str) -> Draft202012Validator:
    """A validator for ``#/$defs/<definition>`` of the protocol schema."""
    if definition not in load_schema()["$defs"]:
        raise KeyError(definition)
    ref = {"$ref": f"{load_schema()['$id']}#/$defs/{definition}"}
    return Draft202012Validator(ref, registry=_registry())


def _validate(frame: Any, entry: str, aliases: dict[str, str]) -> None:
    errors = list(validator_for(entry).iter_errors(frame))
    if not errors:
        return
    t = frame.get("t") if isinstance(frame, dict) else None
    if isinstance(t, str):
        name = aliases.get(t, t)
        members = {r["$ref"].rsplit("/", 1)[-1] for r in load_schema()["$defs"][entry]["oneOf"]}
        if name in members:
            specific = best_match(validator_for(name).iter_errors(frame))
            if specific is not None:
                raise specific
    error = best_match(errors)
    assert error is not None
    raise error


def validate_client_frame(frame: dict[str, Any]) -> None:
    """Raise ValidationError unless ``frame`` is a valid client-to-hub frame."""
    _validate(frame, "client_frame", _CLIENT_DEFS)


def validate_server_frame(frame: dict[str, Any]) -> None:
    """Raise ValidationError unless ``frame`` is a valid hub-to-client frame."""
    _validate(frame, "server_frame", _SERVER_DEFS)


__all__ = [
    "SCHEMA_PATH",
    "ValidationError",
    "load_schema",
    "validate_client_frame",
    "validate_server_frame",
    "validator_for",
]
