"""JWT tokens: minted with HS256, verified with HS256/384/512 (the shared secret; never an
asymmetric or `none` algorithm, so a token cannot pick a weaker check). Never logs a token."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from server.errors import Unauthorized
from server.permissions import Role
from server.rooms import valid_id

ALGORITHM = "HS256"
ACCEPTED = ["HS256", "HS384", "HS512"]  # "HS256 at least": stronger HMACs too
MAX_TOKEN_LEN = 4096
MAX_NAME_LEN = 100


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    role: Role
    name: str
    iat: int = 0  # issued-at (s); revocation drops tokens issued up to a given second

    def as_from(self) -> dict[str, str]:
        return {"id": self.id, "role": self.role.value, "name": self.name}


def mint(secret: str, *, sub: str, role: str, name: str | None = None, ttl: float = 86400) -> str:
    if not valid_id(sub):
        raise ValueError(f"bad sub {sub!r}: letters, digits, _ . @ - (max 64)")
    Role(role)  # raises ValueError naming the role
    if name is not None and not 0 < len(name) <= MAX_NAME_LEN:
        raise ValueError(f"name must be 1 to {MAX_NAME_LEN} characters")
    now = int(time.time())
    claims = {"sub": sub, "role": role, "name": name or sub, "iat": now, "exp": now + int(ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: object) -> Identity:
    """The identity in a valid token, or Unauthorized saying why (never echoing the token)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LEN:
        raise Unauthorized("missing or malformed token")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=ACCEPTED, options={"require": ["sub", "role", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError as e:
        raise Unauthorized(f"invalid token: {type(e).__name__}") from None
    sub, role, name = claims.get("sub"), claims.get("role"), claims.get("name", claims.get("sub"))
    if not valid_id(sub):
        raise Unauthorized("token 'sub' is not a valid id")
    try:
        role_v = Role(str(role))
    except ValueError:
        raise Unauthorized("token 'role' must be human, persona, observer or admin") from None
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN:
        raise Unauthorized(f"token 'name' must be a string of at most {MAX_NAME_LEN} characters")
    iat = claims.get("iat", 0)
    return Identity(str(sub), role_v, name, iat if isinstance(iat, int) else 0)
