"""server.permissions: exhaustive over Role x Op x Kind x member against a written-out table.

The table is the specification, typed by hand from the protocol: it does not import or
mirror the implementation's sets. `Y` = allowed, `.` = forbidden. `member` means a party
of a dm room (its persona or its human), or in the member list of a group/collective room.
"""

from __future__ import annotations

import itertools

import pytest

from server.permissions import Op, Role, allowed
from server.rooms import Kind

TABLE = """
role      kind        member | join create leave send delta history typing invite watch
human     dm          no     |  .     .     .     .     .     .      .      .      .
human     dm          yes    |  Y     .     Y     Y     .     Y      Y      .      .
persona   dm          no     |  .     .     .     .     .     .      .      .      .
persona   dm          yes    |  Y     .     Y     Y     Y     Y      Y      .      .
observer  dm          no     |  .     .     .     .     .     .      .      .      .
observer  dm          yes    |  .     .     .     .     .     .      .      .      .
admin     dm          no     |  Y     .     Y     Y     Y     Y      Y      .      .
admin     dm          yes    |  Y     .     Y     Y     Y     Y      Y      .      .

human     group       no     |  Y     Y     Y     .     .     .      .      .      .
human     group       yes    |  Y     Y     Y     Y     .     Y      Y      Y      .
persona   group       no     |  Y     Y     Y     .     .     .      .      .      .
persona   group       yes    |  Y     Y     Y     Y     Y     Y      Y      Y      .
observer  group       no     |  .     .     .     .     .     .      .      .      .
observer  group       yes    |  .     .     .     .     .     .      .      .      .
admin     group       no     |  Y     Y     Y     Y     Y     Y      Y      Y      .
admin     group       yes    |  Y     Y     Y     Y     Y     Y      Y      Y      .

human     collective  no     |  .     .     .     .     .     .      .      .      .
human     collective  yes    |  .     .     .     .     .     .      .      .      .
persona   collective  no     |  Y     Y     Y     .     .     .      .      .      .
persona   collective  yes    |  Y     Y     Y     Y     Y     Y      Y      Y      .
observer  collective  no     |  .     .     .     .     .     Y      .      .      Y
observer  collective  yes    |  .     .     .     .     .     Y      .      .      Y
admin     collective  no     |  Y     Y     Y     Y     Y     Y      Y      Y      Y
admin     collective  yes    |  Y     Y     Y     Y     Y     Y      Y      Y      Y
"""


def _parse_table(text: str) -> tuple[list[str], dict[tuple[str, str, bool], dict[str, bool]]]:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    ops = lines[0].split("|")[1].split()
    rows: dict[tuple[str, str, bool], dict[str, bool]] = {}
    for line in lines[1:]:
        left, right = line.split("|")
        role, kind, member = left.split()
        cells = right.split()
        assert len(cells) == len(ops), f"row {line!r} has {len(cells)} cells"
        assert set(cells) <= {"Y", "."}, f"row {line!r}: only Y and . allowed"
        key = (role, kind, {"yes": True, "no": False}[member])
        assert key not in rows, f"duplicate row {key}"
        rows[key] = {op: cell == "Y" for op, cell in zip(ops, cells, strict=True)}
    return ops, rows


OPS, EXPECTED = _parse_table(TABLE)
CASES = list(itertools.product(Role, Op, Kind, (False, True)))


def test_table_covers_every_role_kind_member_and_op() -> None:
    assert sorted(OPS) == sorted(op.value for op in Op), "a new Op needs a column in TABLE"
    assert set(EXPECTED) == {
        (r.value, k.value, m) for r in Role for k in Kind for m in (False, True)
    }, "a new Role or Kind needs rows in TABLE"
    assert len(CASES) == 4 * 9 * 3 * 2


@pytest.mark.parametrize(
    ("role", "op", "kind", "member"), CASES,
    ids=[f"{r.value}-{o.value}-{k.value}-{'member' if m else 'outsider'}" for r, o, k, m in CASES],
)
def test_allowed_matches_table(role: Role, op: Op, kind: Kind, member: bool) -> None:
    expected = EXPECTED[(role.value, kind.value, member)][op.value]
    assert allowed(role, op, kind, member=member) is expected


@pytest.mark.parametrize("role", [Role.HUMAN, Role.PERSONA])
@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("member", [False, True])
def test_watch_is_never_allowed_for_humans_and_personas(role: Role, kind: Kind,
                                                        member: bool) -> None:
    assert allowed(role, Op.WATCH, kind, member=member) is False


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("member", [False, True])
@pytest.mark.parametrize("op", [Op.SEND, Op.DELTA, Op.TYPING, Op.INVITE, Op.CREATE, Op.JOIN])
def test_observers_never_write(kind: Kind, member: bool, op: Op) -> None:
    assert allowed(Role.OBSERVER, op, kind, member=member) is False


@pytest.mark.parametrize("op", list(Op))
def test_humans_have_no_business_in_collectives(op: Op) -> None:
    for member in (False, True):
        assert allowed(Role.HUMAN, op, Kind.COLLECTIVE, member=member) is False


@pytest.mark.parametrize("op", [Op.SEND, Op.HISTORY, Op.TYPING, Op.DELTA])
@pytest.mark.parametrize("role", [Role.HUMAN, Role.PERSONA])
def test_non_party_of_a_dm_can_do_nothing(op: Op, role: Role) -> None:
    assert allowed(role, op, Kind.DM, member=False) is False


def test_only_personas_stream_deltas() -> None:
    for kind in Kind:
        for member in (False, True):
            assert allowed(Role.HUMAN, Op.DELTA, kind, member=member) is False
    assert allowed(Role.PERSONA, Op.DELTA, Kind.DM, member=True)
    assert allowed(Role.PERSONA, Op.DELTA, Kind.GROUP, member=True)
    assert allowed(Role.PERSONA, Op.DELTA, Kind.COLLECTIVE, member=True)


def test_allowed_returns_a_real_bool() -> None:
    for role, op, kind, member in CASES:
        assert type(allowed(role, op, kind, member=member)) is bool
