"""The permission matrix: one pure function of (role, op, room, relation).

`relation` says how the user stands to the room: a party of a dm room, a member of a
group/collective room, or neither. Everything not granted here is forbidden.
"""

from __future__ import annotations

from enum import StrEnum

from server.rooms import Kind


class Role(StrEnum):
    HUMAN = "human"
    PERSONA = "persona"
    OBSERVER = "observer"
    ADMIN = "admin"


class Op(StrEnum):
    JOIN = "join"
    CREATE = "create"
    LEAVE = "leave"
    SEND = "send"
    DELTA = "delta"
    HISTORY = "history"
    TYPING = "typing"
    INVITE = "invite"
    WATCH = "watch"


# Ops a member (or dm party) may do, by role and room kind. JOIN/CREATE/LEAVE are checked
# without membership: joining is how one becomes a member.
_OPEN_OPS = {Op.JOIN, Op.CREATE, Op.LEAVE}
_MEMBER_OPS: dict[tuple[Role, Kind], frozenset[Op]] = {
    (Role.HUMAN, Kind.DM): frozenset({Op.JOIN, Op.LEAVE, Op.SEND, Op.HISTORY, Op.TYPING}),
    (Role.PERSONA, Kind.DM): frozenset({Op.JOIN, Op.LEAVE, Op.SEND, Op.DELTA, Op.HISTORY, Op.TYPING}),
    (Role.HUMAN, Kind.GROUP): frozenset({Op.SEND, Op.HISTORY, Op.TYPING, Op.INVITE}),
    (Role.PERSONA, Kind.GROUP): frozenset({Op.SEND, Op.DELTA, Op.HISTORY, Op.TYPING, Op.INVITE}),
    (Role.PERSONA, Kind.COLLECTIVE): frozenset(
        {Op.SEND, Op.DELTA, Op.HISTORY, Op.TYPING, Op.INVITE}
    ),
}
_ADMIN_OPS: dict[Kind, frozenset[Op]] = {
    Kind.DM: frozenset({Op.JOIN, Op.LEAVE, Op.SEND, Op.DELTA, Op.HISTORY, Op.TYPING}),
    Kind.GROUP: frozenset(set(Op) - {Op.WATCH}),
    Kind.COLLECTIVE: frozenset(Op),
}
_OBSERVER_OPS: dict[Kind, frozenset[Op]] = {Kind.COLLECTIVE: frozenset({Op.WATCH, Op.HISTORY})}


def allowed(role: Role, op: Op, kind: Kind, *, member: bool) -> bool:
    """May a user of `role` do `op` in a room of `kind`?

    `member`: for dm rooms, the user is the room's persona or human; for group and
    collective rooms, the user is in the room's member list.
    """
    if role is Role.ADMIN:
        return op in _ADMIN_OPS[kind]
    if role is Role.OBSERVER:
        return op in _OBSERVER_OPS.get(kind, frozenset())
    if kind is Kind.DM:
        return member and op in _MEMBER_OPS[(role, kind)]
    if kind is Kind.COLLECTIVE and role is not Role.PERSONA:
        return False
    if op in _OPEN_OPS:
        return True
    return member and op in _MEMBER_OPS[(role, kind)]
