"""server.auth: HS256 tokens. Every rejection is Unauthorized and never echoes the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from server.auth import MAX_TOKEN_LEN, Identity, mint, verify
from server.errors import Unauthorized
from server.permissions import Role

SECRET = "s" * 40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict[str, Any], claims: dict[str, Any], key: str | None = SECRET) -> str:
    """A JWT built by hand (no library), signed HS256 with `key`, or unsigned when None."""
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = b"" if key is None else hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(sig)


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "role": "human", "name": "Alice",
                            "exp": int(time.time()) + 600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def rejected(token: object, match: str | None = None) -> Unauthorized:
    with pytest.raises(Unauthorized, match=match) as e:
        verify(SECRET, token)
    if isinstance(token, str) and token:
        msg = e.value.message
        assert token not in msg
        for part in token.split("."):  # no segment of it either
            assert len(part) < 8 or part not in msg
    return e.value


# ---- minting and verifying --------------------------------------------------------------

def who(ident: Identity) -> tuple[str, Role, str]:
    return ident.id, ident.role, ident.name


@pytest.mark.parametrize("role", ["human", "persona", "observer", "admin"])
def test_mint_then_verify(role: str) -> None:
    ident = verify(SECRET, mint(SECRET, sub="sam.v2", role=role, name="Samantha"))
    assert who(ident) == ("sam.v2", Role(role), "Samantha")
    assert isinstance(ident.role, Role)


def test_verify_reports_issued_at() -> None:
    before = int(time.time())
    assert before <= verify(SECRET, mint(SECRET, sub="alice", role="human")).iat <= time.time()
    assert verify(SECRET, craft({"alg": "HS256"}, claims(iat=1234))).iat == 1234
    assert verify(SECRET, craft({"alg": "HS256"}, claims())).iat == 0  # iat is optional


def test_name_defaults_to_sub() -> None:
    assert verify(SECRET, mint(SECRET, sub="alice", role="human")).name == "alice"
    assert verify(SECRET, craft({"alg": "HS256", "typ": "JWT"}, claims(name=None))).name == "alice"


def test_minted_token_is_hs256_with_the_contract_claims() -> None:
    token = mint(SECRET, sub="alice", role="human", name="Alice", ttl=120)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    body = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert {k: body[k] for k in ("sub", "role", "name")} == {"sub": "alice", "role": "human",
                                                              "name": "Alice"}
    assert abs(body["exp"] - (time.time() + 120)) < 5


def test_hand_crafted_hs256_token_is_accepted() -> None:
    # Interop: any correct HS256 JWT works, not only ones minted by server.auth.
    ident = verify(SECRET, craft({"alg": "HS256", "typ": "JWT"}, claims()))
    assert who(ident) == ("alice", Role.HUMAN, "Alice")


def test_identity_as_from() -> None:
    assert Identity("alice", Role.HUMAN, "Alice").as_from() == {
        "id": "alice", "role": "human", "name": "Alice"}


@pytest.mark.parametrize("sub", ["", "a b", "x" * 65, ".alice", "a:b"])
def test_mint_rejects_bad_sub(sub: str) -> None:
    with pytest.raises(ValueError, match="sub"):
        mint(SECRET, sub=sub, role="human")


@pytest.mark.parametrize("role", ["root", "Human", "", "humans"])
def test_mint_rejects_bad_role(role: str) -> None:
    with pytest.raises(ValueError):
        mint(SECRET, sub="alice", role=role)


def test_mint_refuses_a_name_verify_would_refuse() -> None:
    # Otherwise `os1 token --name <long>` hands out a token that can never log in.
    assert verify(SECRET, mint(SECRET, sub="alice", role="human", name="n" * 100)).name == "n" * 100
    with pytest.raises(ValueError, match="name"):
        mint(SECRET, sub="alice", role="human", name="n" * 101)


# ---- rejections -------------------------------------------------------------------------

def test_expired() -> None:
    rejected(mint(SECRET, sub="alice", role="human", ttl=-10), "expired")
    rejected(craft({"alg": "HS256"}, claims(exp=int(time.time()) - 1)), "expired")


def test_wrong_key() -> None:
    rejected(mint("another-secret-" + "y" * 30, sub="alice", role="human"), "invalid")


def test_tampered_payload() -> None:
    header, _, sig = mint(SECRET, sub="alice", role="human").split(".")
    forged = b64(json.dumps(claims(role="admin")).encode())
    rejected(f"{header}.{forged}.{sig}", "invalid")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected(alg: str) -> None:
    rejected(craft({"alg": alg, "typ": "JWT"}, claims(role="admin"), key=None))
    unsigned = craft({"alg": alg}, claims(role="admin"), key=None).rsplit(".", 1)[0] + "."
    rejected(unsigned)


def test_signed_with_hs256_but_header_lies() -> None:
    # A valid HMAC over a header claiming another algorithm must not be accepted as HS256.
    rejected(craft({"alg": "RS256"}, claims()))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_stronger_hmacs_with_the_secret_are_accepted(alg: str) -> None:
    secret = "s" * 64  # PyJWT wants a key as long as the hash for these
    token = jwt.encode(claims(sub="zoe", role="observer"), secret, algorithm=alg)
    assert verify(secret, token).id == "zoe"
    with pytest.raises(Unauthorized, match="invalid"):
        verify(secret, jwt.encode(claims(), "t" * 64, algorithm=alg))


@pytest.mark.parametrize("missing", ["sub", "role", "exp"])
def test_missing_claims(missing: str) -> None:
    c = claims()
    del c[missing]
    rejected(craft({"alg": "HS256"}, c))


@pytest.mark.parametrize("role", ["root", "", "Human", 1, None, ["human"]])
def test_bad_role_claim(role: Any) -> None:
    c = claims()
    c["role"] = role
    rejected(craft({"alg": "HS256"}, c))


@pytest.mark.parametrize("sub", ["", "a b", "x" * 65, "a:b", 123, None, ["alice"]])
def test_bad_sub_claim(sub: Any) -> None:
    c = claims()
    c["sub"] = sub
    rejected(craft({"alg": "HS256"}, c))


@pytest.mark.parametrize("name", ["", "n" * 101, 5, ["Alice"]])
def test_bad_name_claim(name: Any) -> None:
    rejected(craft({"alg": "HS256"}, claims(name=name)), "name")


def test_bad_exp_claim() -> None:
    rejected(craft({"alg": "HS256"}, claims(exp="tomorrow")))


@pytest.mark.parametrize(
    "token",
    [None, "", 42, b"abc", "abc", "a.b", "a.b.c", "....", "x" * (MAX_TOKEN_LEN + 1),
     "Bearer " + "x" * 40, "ééé.ééé.ééé"],
)
def test_malformed(token: object) -> None:
    rejected(token)


def test_oversized_but_otherwise_valid_token_is_rejected() -> None:
    token = mint(SECRET, sub="alice", role="human", name="A" * 99)
    padded = craft({"alg": "HS256", "pad": "p" * MAX_TOKEN_LEN}, claims())
    assert verify(SECRET, token).name == "A" * 99
    rejected(padded, "malformed")


def test_rejections_never_echo_claims_or_signature() -> None:
    secret_looking = "SUPERSECRETVALUE" * 3
    for token in (
        craft({"alg": "HS256"}, claims(sub=secret_looking + "!")),
        craft({"alg": "HS256"}, claims(role=secret_looking)),
        craft({"alg": "HS256"}, claims(exp=1)),
        mint("k" * 40, sub="alice", role="human") + secret_looking,
        secret_looking,
    ):
        err = rejected(token)
        assert secret_looking not in err.message
        assert SECRET not in err.message
