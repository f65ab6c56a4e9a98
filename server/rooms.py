"""Room ids (`kind:rest`) and user ids: parsing and the dm short form. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from server.errors import BadRequest

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
COLLECTIVE_ALL = "collective:all"
COLLECTIVE_ANY = "collective:*"


class Kind(StrEnum):
    DM = "dm"
    GROUP = "group"
    COLLECTIVE = "collective"


@dataclass(frozen=True, slots=True)
class Room:
    """A parsed room id. For dm rooms `persona` and `human` are set."""

    id: str
    kind: Kind
    name: str
    persona: str = ""
    human: str = ""


def valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def parse_room(raw: object, *, user: str = "", role: str = "") -> Room:
    """Parse a room id sent by a client; expands `dm:<persona>` for humans.

    Raises BadRequest naming what is wrong.
    """
    if not isinstance(raw, str) or not raw:
        raise BadRequest("room must be a non-empty string like 'dm:samantha' or 'group:book-club'")
    kind_s, sep, rest = raw.partition(":")
    if not sep:
        raise BadRequest(f"room {raw[:80]!r} must be 'kind:name' (dm, group or collective)")
    try:
        kind = Kind(kind_s)
    except ValueError:
        raise BadRequest(f"unknown room kind {kind_s[:20]!r}: use dm, group or collective") from None
    if kind is Kind.DM:
        return _parse_dm(raw, rest, user=user, role=role)
    if not valid_id(rest):
        raise BadRequest(f"bad room name {rest[:80]!r}: letters, digits, _ . @ - (max 64)")
    return Room(raw, kind, rest)


def _parse_dm(raw: str, rest: str, *, user: str, role: str) -> Room:
    persona, sep, human = rest.partition(":")
    if not sep:
        if role != "human":
            raise BadRequest("only humans may use the short form dm:<persona>; use dm:<persona>:<human>")
        human = user
    if not valid_id(persona) or not valid_id(human):
        raise BadRequest(f"bad dm room {raw[:80]!r}: use dm:<persona> or dm:<persona>:<human>")
    return Room(f"dm:{persona}:{human}", Kind.DM, f"{persona}:{human}", persona, human)
