"""Limits and the node's life on the wire: rate limits (rate_limited, then 4029), a slow
consumer closed with 4008 while the room carries on, graceful shutdown of a real `os1 serve`
process (1001, exit 0) on SIGTERM and SIGINT, and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from wire import Clients, Wire, eventually, settings_for, small_rcvbuf_socket, with_settings

from server import auth
from server.config import Settings


@pytest.fixture
def hub_settings(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    return settings_for(request, tmp_path)


# ---- rate limits ------------------------------------------------------------------------


@with_settings(rate_limit=5.0, rate_burst=5, rate_strikes=1000)
async def test_rate_limited_then_refilled(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    assert alice.welcome is not None and alice.welcome["server"]["rate"] == {"per_s": 5.0, "burst": 5}
    await asyncio.sleep(0.25)  # the hello took a token: let it come back
    for i in range(10):
        await alice.send({"t": "ping", "id": i})
    replies = [await alice.recv_until({"re": i}) for i in range(10)]
    kinds = [r["t"] if r["t"] == "pong" else r["code"] for r in replies]
    assert kinds.count("pong") in (5, 6), kinds  # the burst (+ at most one refilled token)
    assert kinds[:5] == ["pong"] * 5 and kinds[-1] == "rate_limited", kinds
    await asyncio.sleep(0.5)  # 5 per second: two tokens back
    await alice.ping()
    assert alice.ws.close_code is None


@with_settings(rate_limit=5.0, rate_burst=5, rate_strikes=3)
async def test_keeps_going_closed_4029(clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    try:
        for i in range(40):
            await alice.send({"t": "ping", "id": i})
    except Exception:  # the hub may close before all are written
        pass
    assert await alice.closed() == 4029
    errors = [f for f in alice.frames if f["t"] == "error"]
    assert [e["code"] for e in errors] == ["rate_limited"] * 3, errors  # the 3rd closes
    pongs = [f["re"] for f in alice.frames if f["t"] == "pong"]
    assert pongs[:5] == [0, 1, 2, 3, 4] and len(pongs) < 8, pongs  # the burst (+ a refill)


# ---- a slow consumer --------------------------------------------------------------------


@with_settings(send_queue=50, rate_limit=10000.0, rate_burst=10000)
async def test_slow_consumer_closed_4008_room_carries_on(hub: Any, clients: Clients) -> None:
    host, port = hub.base.removeprefix("http://").split(":")
    # the slow client: tiny kernel receive buffer, and the client itself stops reading
    sock = small_rcvbuf_socket(host, int(port))
    slow_ws = await connect(hub.url, sock=sock, subprotocols=["os1.v1.json"],  # type: ignore[list-item]
                            max_queue=1, max_size=None, ping_interval=None, close_timeout=1)
    slow = Wire(slow_ws, "json")
    clients.open.append(slow)
    await slow.send({"t": "hello", "id": 1, "token": hub.token("human", "slowpoke")})
    await slow.recv_until("welcome")
    flood = await clients.login("persona", "samantha")
    normal = await clients.login("human", "alice")
    await flood.request({"t": "join", "room": "group:busy", "create": True})
    await normal.request({"t": "join", "room": "group:busy"})
    assert (await slow.request({"t": "join", "room": "group:busy"}))["t"] == "joined"
    assert len(hub.hub.conns) == 3
    slow_conn = next(c for c in hub.hub.conns if c.identity and c.identity.id == "slowpoke")
    # From here on `slow` reads nothing. Flood until the hub gives up on it: how much that
    # takes depends on the kernel's socket buffers (several MB on loopback), so the bound
    # is generous; the hub must have dropped it long before.
    got: list[dict[str, Any]] = []

    async def read_normal() -> None:  # a member that keeps reading throughout
        while True:
            got.append(await normal.recv_until("msg", 30))

    reader = asyncio.create_task(read_normal())
    text = "x" * 16000
    sent = 0
    try:
        while not slow_conn.closed and sent < 2000:
            for _ in range(25):
                await flood.send({"t": "send", "id": sent, "room": "group:busy", "text": text})
                sent += 1
            await flood.recv_until({"t": "ack", "re": sent - 1}, 10)
        assert slow_conn.closed, f"still open after {sent} messages of 16 kB"
        # the others were never held up: every message, in order
        await eventually(lambda: len(got) >= sent or reader.done(), 20, "alice read everything")
    finally:
        reader.cancel()
        (failed,) = await asyncio.gather(reader, return_exceptions=True)
    if isinstance(failed, Exception):  # e.g. a frame failing the schema
        raise failed
    assert [m["seq"] for m in got] == list(range(1, sent + 1))
    assert len(await flood.collect("msg", sent, within=20)) == sent
    # the hub dropped the slow one (close 4008 with its queue discarded, then the socket)
    # (closing gives up on the close handshake after 2 s and aborts the socket)
    await eventually(lambda: len(hub.hub.conns) == 2, 5, "the slow connection is gone")
    metrics = hub.hub.metrics.render().decode()
    assert 'os1_closes_total{code="4008"} 1.0' in metrics, metrics
    assert "os1_queue_drops_total 1.0" in metrics
    # when it reads again, it finds the end: close 4008 if it got there, else a dropped socket
    code = await slow.closed(within=10)
    assert code in (4008, 1006), code
    seqs = [m["seq"] for m in slow.backlog if m["t"] == "msg"]
    assert len(seqs) < sent and seqs == list(range(1, len(seqs) + 1))
    await normal.ping()
    await flood.ping()


@with_settings(send_queue=20)
async def test_pipelined_burst_from_a_fast_reader_is_not_too_slow(clients: Clients) -> None:
    """60 requests read in one go produce 60 replies within one loop tick: more than the
    send queue holds, but the socket takes them, so this is not a slow consumer."""
    alice = await clients.login("human", "alice")
    await alice.send_batch([{"t": "ping", "id": i} for i in range(60)])
    pongs = await alice.collect("pong", 60)
    assert [p["re"] for p in pongs] == list(range(60))
    await alice.ping()


# ---- graceful shutdown of a real process ------------------------------------------------

BANNER = re.compile(r"OS1 hub on (http://\S+)")
SECRET = "shutdown-secret-" + "z" * 32


async def start_os1(tmp_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "OS1_DATA_DIR": str(tmp_path), "OS1_SECRET": SECRET,
           "OS1_DRAIN_TIMEOUT": "3", "OS1_LOG_FORMAT": "json"}
    os1 = Path(sys.executable).parent / "os1"
    proc = await asyncio.create_subprocess_exec(
        str(os1), "serve", "--port", "0", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    async with asyncio.timeout(15):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "os1 serve exited before printing its banner"
            if m := BANNER.search(line):
                return proc, m.group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_graceful_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    proc, base = await start_os1(tmp_path)
    try:
        url = base.replace("http", "ws", 1) + "/ws"
        tokens: list[str] = []

        def mint(role: str, sub: str, name: str | None = None) -> str:
            tokens.append(auth.mint(SECRET, sub=sub, role=role, name=name))
            return tokens[-1]

        async with Clients(url, mint) as clients:
            alice = await clients.login("human", "alice")
            sam = await clients.login("persona", "samantha")
            ack = await alice.request({"t": "send", "room": "dm:samantha", "text": "bye"})
            assert (await sam.recv_until("msg"))["mid"] == ack["mid"]
            t0 = time.monotonic()
            proc.send_signal(sig)
            assert await alice.closed(5) == 1001
            assert await sam.closed(5) == 1001
            async with asyncio.timeout(5):
                rc = await proc.wait()
            assert proc.stderr is not None
            logs = (await proc.stderr.read()).decode()
            assert rc == 0, logs[-2000:]
            assert time.monotonic() - t0 < 5
            events = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
            names = [e["event"] for e in events]
            assert names.index("draining") < names.index("stopped"), names
            assert sorted(e["user"] for e in events if e["event"] == "closing"
                          and e["code"] == 1001) == ["alice", "samantha"]
            assert SECRET not in logs and not any(t in logs for t in tokens)
            with pytest.raises(OSError):  # nothing listens any more
                await clients.connect()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ---- HTTP endpoints ---------------------------------------------------------------------


async def test_health_ready_metrics(hub: Any, clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    sam = await clients.login("persona", "samantha")
    await alice.request({"t": "send", "room": "dm:samantha", "text": "hi"})
    await sam.recv_until("msg")
    await alice.ping()
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.base + "/healthz") as r:
            assert r.status == 200
        async with http.get(hub.base + "/readyz") as r:
            assert r.status == 200 and r.content_type == "application/json"
            assert await r.json() == {"ready": True, "engine": "memory", "draining": False}
        async with http.get(hub.base + "/metrics") as r:
            assert r.status == 200
            text = await r.text()
    assert 'os1_connections{role="human"} 1.0' in text
    assert 'os1_connections{role="persona"} 1.0' in text
    assert 'os1_frames_in_total{type="send"} 1.0' in text
    assert 'os1_frames_in_total{type="ping"} 1.0' in text
    assert 'os1_frames_out_total{type="msg"} 2.0' in text  # alice's copy and samantha's


async def test_draining_node_refuses_ws_and_readiness(hub: Any, clients: Clients) -> None:
    alice = await clients.login("human", "alice")
    hub.hub.draining = True  # what the shutdown hook sets first
    with pytest.raises(InvalidStatus) as info:
        await clients.connect()
    assert info.value.response.status_code == 503
    async with aiohttp.ClientSession() as http, http.get(hub.base + "/readyz") as r:
        assert r.status == 503 and (await r.json())["draining"] is True
    await alice.ping()  # connections already open keep working until they are closed
    hub.hub.draining = False


async def test_in_process_shutdown_closes_1001(hub: Any, clients: Clients) -> None:
    conns: list[Wire] = [await clients.login("human", f"u{i}") for i in range(3)]
    t0 = time.monotonic()
    await hub.stop()
    assert time.monotonic() - t0 < hub.settings.drain_timeout
    for w in conns:
        assert await w.closed(2) == 1001
