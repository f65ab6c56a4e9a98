"""Authentication on the wire: hello/welcome, the Bearer header, every kind of bad token,
anything before welcome, the hello timeout, and no secret or token in the logs."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

import jwt
import orjson
import pytest
import structlog
from websockets.exceptions import InvalidStatus
from wire import Clients, Wire, settings_for, with_settings

from server.config import Settings


@pytest.fixture
def hub_settings(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    return settings_for(request, tmp_path)


def b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


def claims(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"sub": "alice", "role": "human", "name": "Alice",
                         "exp": int(time.time()) + 600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def signed(secret: str, **over: Any) -> str:
    return jwt.encode(claims(**over), secret, algorithm="HS256")


# Each case: a function of the hub's secret giving the hello's token (None: no token field).
BAD_TOKENS = {
    "missing": lambda s: None,
    "empty": lambda s: "",
    "not_a_string": lambda s: 12345,
    "garbage": lambda s: "not-a-jwt",
    "three_garbage_parts": lambda s: "abc.def.ghi",
    "expired": lambda s: signed(s, exp=int(time.time()) - 60),
    "wrong_key": lambda s: signed("another-secret-" + "y" * 32),
    "alg_none": lambda s: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
    "alg_none_with_sig": lambda s: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.c2ln",
    "tampered_payload": lambda s: ".".join(
        (lambda p: [p[0], b64(claims(role="admin")), p[2]])(signed(s).split("."))),
    "role_unknown": lambda s: signed(s, role="superuser"),
    "role_missing": lambda s: signed(s, role=None),
    "sub_invalid": lambda s: signed(s, sub="bad sub!"),
    "sub_too_long": lambda s: signed(s, sub="a" * 65),
    "sub_missing": lambda s: signed(s, sub=None),
    "exp_missing": lambda s: signed(s, exp=None),
    "name_not_string": lambda s: signed(s, name=["x"]),
}


async def expect_unauthorized(w: Wire, re: Any = None) -> dict[str, Any]:
    """The error unauthorized (with `re` when given), then close 4001, and nothing else."""
    err = await w.recv_until("error")
    assert err["code"] == "unauthorized", err
    if re is None:
        assert "re" not in err, err
    else:
        assert err["re"] == re, err
    assert await w.closed() == 4001
    assert not any(f["t"] == "welcome" for f in w.frames), w.frames
    return err


# ---- hello / welcome --------------------------------------------------------------------


async def test_hello_welcome_shape(hub: Any, clients: Clients) -> None:
    w = await clients.connect()
    assert w.ws.subprotocol == "os1.v1.json"
    await w.send({"t": "hello", "id": "h-1", "token": hub.token("human", "alice", "Alice")})
    welcome = await w.recv_until("welcome")
    assert welcome["re"] == "h-1"
    assert isinstance(welcome["session"], str) and welcome["session"]
    assert welcome["me"] == {"id": "alice", "role": "human", "name": "Alice"}
    server = welcome["server"]
    assert server["node"] == "test-node"
    assert isinstance(server["version"], str) and server["version"]
    assert server["max_frame"] == 65536 and server["max_text"] == 16384
    assert server["protocol"] == 1 and server["history"] == 1000
    assert server["rate"] == {"per_s": hub.settings.rate_limit, "burst": hub.settings.rate_burst}
    await w.ping()


@pytest.mark.parametrize("role", ["human", "persona", "observer", "admin"])
async def test_every_role_is_welcomed(clients: Clients, role: str) -> None:
    w = await clients.login(role, f"{role}-1", f"The {role}")
    assert w.welcome is not None and w.welcome["re"] == 1
    await w.ping()


async def test_sessions_differ_per_connection(clients: Clients) -> None:
    a = await clients.login("human", "alice")
    b = await clients.login("human", "alice")
    assert a.welcome and b.welcome and a.welcome["session"] != b.welcome["session"]


async def test_no_subprotocol_means_json(hub: Any, clients: Clients) -> None:
    w = await clients.connect(subprotocols=[])
    assert w.ws.subprotocol is None
    await w.send({"t": "hello", "id": 1, "token": hub.token()})
    assert (await w.recv_until("welcome"))["re"] == 1  # Wire checks it came as a text frame


async def test_hello_twice_is_bad_request_and_stays_open(hub: Any, clients: Clients) -> None:
    w = await clients.login()
    err = await w.request({"t": "hello", "id": 2, "token": hub.token()})
    assert err["t"] == "error" and err["code"] == "bad_request" and err["re"] == 2
    await w.ping()


# ---- Authorization: Bearer header -------------------------------------------------------


async def test_bearer_header_gets_welcome_at_once(hub: Any, clients: Clients) -> None:
    token = hub.token("persona", "samantha", "Samantha")
    w = await clients.connect(headers={"Authorization": f"Bearer {token}"})
    welcome = await w.recv_until(lambda f: True)  # the very first frame
    assert welcome["t"] == "welcome", welcome
    assert "re" not in welcome
    assert welcome["me"] == {"id": "samantha", "role": "persona", "name": "Samantha"}
    await w.ping()  # no hello needed


async def test_bearer_header_msgpack(hub: Any, clients: Clients) -> None:
    w = await clients.connect("msgpack", headers={"Authorization": f"Bearer {hub.token()}"})
    assert (await w.recv_until(lambda f: True))["t"] == "welcome"  # a binary frame
    await w.ping()


@pytest.mark.parametrize("header", ["garbage", "expired", "wrong_key", "alg_none", "basic", "empty"])
async def test_bad_bearer_header_is_http_401(hub: Any, clients: Clients, header: str) -> None:
    secret = hub.settings.secret
    value = {
        "garbage": "Bearer not-a-jwt",
        "expired": f"Bearer {signed(secret, exp=int(time.time()) - 5)}",
        "wrong_key": f"Bearer {signed('k' * 40)}",
        "alg_none": f"Bearer {BAD_TOKENS['alg_none'](secret)}",
        "basic": f"Basic {hub.token()}",
        "empty": "Bearer ",
    }[header]
    with pytest.raises(InvalidStatus) as info:
        await clients.connect(headers={"Authorization": value})
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    body = orjson.loads(response.body)
    assert body["error"] == "unauthorized" and isinstance(body["message"], str)


# ---- bad tokens, bad first frames, timeout ----------------------------------------------


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_is_unauthorized_then_4001(hub: Any, clients: Clients, case: str) -> None:
    token = BAD_TOKENS[case](hub.settings.secret)
    w = await clients.connect()
    hello: dict[str, Any] = {"t": "hello", "id": 7}
    if token is not None:
        hello["token"] = token
    await w.send(hello)
    await expect_unauthorized(w, re=7)


async def test_bad_token_msgpack(hub: Any, clients: Clients) -> None:
    w = await clients.connect("msgpack")
    await w.send({"t": "hello", "id": "x", "token": "garbage"})
    await expect_unauthorized(w, re="x")


FIRST_FRAMES: dict[str, str | bytes] = {
    "not_json": "hello?",
    "json_array": '["hello"]',
    "json_string": '"hello"',
    "empty_object": "{}",
    "bad_msgpack": b"\xc1\xc1",
    "msgpack_not_map": b"\x93\x01\x02\x03",
}


@pytest.mark.parametrize("case", list(FIRST_FRAMES))
async def test_garbage_first_frame_is_unauthorized(clients: Clients, case: str) -> None:
    w = await clients.connect()
    await w.send_raw(FIRST_FRAMES[case])
    await expect_unauthorized(w)


@pytest.mark.parametrize("frame", [
    {"t": "ping", "id": 5},
    {"t": "join", "id": "j", "room": "group:g", "create": True},
    {"t": "send", "id": 6, "room": "dm:samantha", "text": "hi"},
    {"t": "nonsense", "id": 8},
    {"t": 1, "id": 3},  # no string `t`: refused all the same, and the reply still carries re
])
async def test_non_hello_first_frame_is_unauthorized(clients: Clients, frame: dict[str, Any]) -> None:
    w = await clients.connect()
    await w.send(frame)
    await expect_unauthorized(w, re=frame["id"])


async def test_non_hello_first_frame_without_id(clients: Clients) -> None:
    w = await clients.connect()
    await w.send({"t": "ping"})
    await expect_unauthorized(w)


@with_settings(hello_timeout=0.3)
async def test_hello_timeout(clients: Clients) -> None:
    w = await clients.connect()
    t0 = time.monotonic()
    err = await expect_unauthorized(w)
    elapsed = time.monotonic() - t0
    assert 0.2 < elapsed < 2.0, elapsed
    assert err["message"]


@with_settings(hello_timeout=0.3)
async def test_bearer_header_needs_no_hello_within_timeout(hub: Any, clients: Clients) -> None:
    w = await clients.connect(headers={"Authorization": f"Bearer {hub.token()}"})
    await w.recv_until("welcome")
    await asyncio.sleep(0.6)
    await w.ping()


# ---- no secret or token in the logs -----------------------------------------------------


async def test_no_secret_or_token_in_logs(hub: Any, clients: Clients,
                                          caplog: pytest.LogCaptureFixture) -> None:
    secret = hub.settings.secret
    good = hub.token("human", "alice")
    header_token = hub.token("human", "bob")
    bad = [signed("k" * 40), signed(secret, exp=int(time.time()) - 60), "garbage-token-xyz",
           BAD_TOKENS["alg_none"](secret), signed(secret, role="superuser")]
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        for token in bad:
            w = await clients.connect()
            await w.send({"t": "hello", "id": 1, "token": token})
            await expect_unauthorized(w, re=1)
        with pytest.raises(InvalidStatus):
            await clients.connect(headers={"Authorization": f"Bearer {bad[0]}"})
        w = await clients.connect()
        await w.send({"t": "hello", "id": 1, "token": good})
        await w.recv_until("welcome")
        await w.ping()
        h = await clients.connect(headers={"Authorization": f"Bearer {header_token}"})
        await h.recv_until("welcome")
        await w.close()
        await h.close()
        await asyncio.sleep(0.1)  # let the hub log the disconnects
    events = [e["event"] for e in logs]
    assert events.count("unauthorized") == len(bad), events  # the logs were captured
    assert events.count("welcome") == 2, events
    # stdlib logging on the hub's side (aiohttp); the test client's own debug log
    # (websockets.client) prints the header it sends, which is not the hub's doing.
    hub_records = [r.getMessage() for r in caplog.records if not r.name.startswith("websockets")]
    assert any("GET /ws" in m for m in hub_records)  # the access log was captured
    text = repr(logs) + "\n" + "\n".join(hub_records)
    for token in [good, header_token, *bad]:
        for part in {token, *token.split(".")} - {""}:
            if len(part) >= 8:
                assert part not in text, f"a token (part) is in the logs: {part[:12]}…"
    assert secret not in text
