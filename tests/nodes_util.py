"""Real `os1 serve` processes on one Redis, and traffic in which every acked message is
accounted for by seq and cid (imported by the node tests like `sdk_util.py`).

    node = await cluster.start("a", redis_url)          # a process on 127.0.0.1, port 0
    alice = await cluster.client("alice", a, b)         # SDK client: a first, then b
    ledger = Ledger(ROOM); seen = Seen(alice, ROOM)
    await ledger.send_all(alice, "alice", 50)           # retries `unavailable` with the cid
    await verify(ledger, await read_log(reader), [seen])

Every wait is bounded; `cluster` kills every process it started, whatever the test did.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from clients.sdk import Client, RequestError, RequestTimeoutError
from server import auth

OS1 = Path(sys.executable).with_name("os1")
SECRET = "nodes-secret-" + "z" * 40
FAST = (0.02, 0.2)  # client backoff: reconnect quickly
START_WITHIN = 20.0  # seconds for a node to print its banner
BANNER = re.compile(r"OS1 hub on (http://127\.0\.0\.1:\d+)")
ROOM = "group:traffic"

Frame = dict[str, Any]


@dataclass
class Node:
    name: str
    proc: asyncio.subprocess.Process
    base: str  # http://127.0.0.1:PORT
    log: Path  # the node's stderr (its structlog lines)

    @property
    def url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/ws"

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    async def kill(self) -> None:
        """kill -9, and wait (bounded) until it is gone."""
        self.resume()  # a stopped process dies of SIGKILL too, but then it is reaped at once
        self.signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await self.proc.wait()


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes: list[Node] = []
        self.clients: list[Client] = []

    async def start(self, name: str, redis_url: str, **env: str) -> Node:
        """`os1 serve --port 0` on 127.0.0.1 with OS1_<KEY> overrides from `env`."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("OS1_")}
        environ.update(OS1_REDIS_URL=redis_url, OS1_SECRET=SECRET, OS1_NODE=name,
                       OS1_DATA_DIR=str(self.workdir / name), OS1_PERSONAS="none",
                       OS1_HOST="127.0.0.1", OS1_LOG_FORMAT="console", OS1_DRAIN_TIMEOUT="1")
        environ.update({f"OS1_{k.upper()}": v for k, v in env.items()})
        out, log = self.workdir / f"{name}.out", self.workdir / f"{name}.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        stdout, stderr = _outputs(out, log)
        try:
            proc = await asyncio.create_subprocess_exec(
                str(OS1), "serve", "--port", "0", env=environ, stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout, stderr=stderr)
        finally:  # the child keeps its own copies
            stdout.close()
            stderr.close()
        node = Node(name, proc, "", log)
        self.nodes.append(node)  # from here on the finally of the fixture kills it
        async with asyncio.timeout(START_WITHIN):
            while not (found := BANNER.search(out.read_text())):
                if proc.returncode is not None:
                    raise RuntimeError(f"node {name} exited {proc.returncode}: see {log}")
                await asyncio.sleep(0.02)
        node.base = found.group(1)
        return node

    async def client(self, sub: str, node: Node, *others: Node, role: str = "human",
                     **options: Any) -> Client:
        """A connected SDK client of `node`; it reconnects to `others`, in turn, then back."""
        options.setdefault("backoff", FAST)
        options.setdefault("request_timeout", 5.0)
        token = auth.mint(SECRET, sub=sub, role=role, name=sub.capitalize())
        client = Client(node.url, token, urls=[n.url for n in others], **options)
        self.clients.append(client)
        await client.connect()
        return client

    async def close(self) -> None:
        for node in self.nodes:  # first: a client closing towards a stopped node would wait
            try:
                await node.kill()
            except TimeoutError:
                pass  # not reaped in 10 s: nothing more a test can do
        for client in self.clients:
            try:
                async with asyncio.timeout(5):
                    await client.close()
            except TimeoutError:
                pass  # its node is gone: nothing is left to close cleanly


def _outputs(out: Path, log: Path) -> tuple[BinaryIO, BinaryIO]:
    return open(out, "wb"), open(log, "ab")  # closed by the caller once the child has them


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    started = Cluster(tmp_path / "nodes")
    try:
        yield started
    finally:
        await started.close()


# ---- traffic with a ledger ----------------------------------------------------------------

@dataclass
class Ledger:
    """What the senders were told: every acked cid and its seq, and how hard it was."""

    room: str
    acked: dict[str, int] = field(default_factory=dict)
    acked_at: dict[str, float] = field(default_factory=dict)  # loop time of each ack
    retries: Counter[str] = field(default_factory=Counter)  # unavailable, timeout, duplicate
    _more: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def reach(self, count: int, limit: float = 10.0) -> None:
        """Wait until `count` msgs were acked (traffic is flowing)."""
        async with asyncio.timeout(limit):
            while len(self.acked) < count:
                self._more.clear()
                await self._more.wait()

    async def send_all(self, client: Client, who: str, count: int, pause: float = 0.02,
                       limit: float = 20.0) -> None:
        """Send `count` msgs `<who>-<i>` one after the other; each is retried with its cid
        until acked (at most `limit` seconds each)."""
        for i in range(count):
            await self.send(client, f"{who}-{i}", limit)
            await asyncio.sleep(pause)

    async def send(self, client: Client, cid: str, limit: float) -> None:
        async with asyncio.timeout(limit):
            while True:
                try:
                    ack = await client.send(self.room, f"text of {cid}", cid=cid)
                    break
                except RequestError as err:  # unavailable: resend with the same cid
                    if err.code != "unavailable":
                        raise
                    self.retries["unavailable"] += 1
                except RequestTimeoutError:
                    self.retries["timeout"] += 1
                await asyncio.sleep(0.05)
        if ack.get("duplicate"):
            self.retries["duplicate"] += 1
        first = self.acked.setdefault(cid, ack["seq"])
        assert first == ack["seq"], f"{cid} acked with seq {first}, then {ack['seq']}"
        self.acked_at[cid] = asyncio.get_running_loop().time()
        self._more.set()


class Seen:
    """Every msg of `room` an SDK client delivered (after its dedupe), and its reconnects."""

    def __init__(self, client: Client, room: str) -> None:
        self.client, self.room = client, room
        self.msgs: list[Frame] = []
        self.reconnects: list[Frame] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.client:
            if event["t"] == "msg" and event["room"] == self.room:
                self.msgs.append(event)
            elif event["t"] == "reconnected":
                self.reconnects.append(event)

    async def until(self, seq: int, limit: float = 10.0) -> None:
        async with asyncio.timeout(limit):
            while not (self.msgs and self.msgs[-1]["seq"] >= seq):
                if self.task.done():
                    self.task.result()  # its failure, if any
                    raise AssertionError("the client ended")
                await asyncio.sleep(0.02)


async def read_log(client: Client, room: str = ROOM, limit: float = 10.0) -> list[Frame]:
    """The room's whole log as a fresh join with since=0 replays it."""
    joined = await client.join(room, since=0)
    assert joined["gap"] is False and joined["replayed"] == joined["seq"], joined
    got: list[Frame] = []
    async with asyncio.timeout(limit):
        while len(got) < joined["replayed"]:
            event = await client.next_event()
            if event["t"] == "msg" and event["room"] == room:
                got.append(event)
    return got


async def verify(ledger: Ledger, log: list[Frame], seen: list[Seen]) -> None:
    """Zero lost, zero duplicated: the log holds every acked cid once, at its acked seq,
    seqs run 1..N without a gap, and every client delivered exactly the log, in order."""
    assert ledger.acked, "nothing was acked"
    assert [m["seq"] for m in log] == list(range(1, len(log) + 1)), "seqs not gapless from 1"
    cids = Counter(m.get("cid") for m in log)
    assert not [c for c, n in cids.items() if n > 1], f"stored twice: {cids.most_common(3)}"
    assert {m["cid"]: m["seq"] for m in log} == ledger.acked, "log and acks differ"
    expected = [(m["seq"], m["mid"]) for m in log]
    for s in seen:
        await s.until(len(log))
        got = [(m["seq"], m["mid"]) for m in s.msgs]
        assert got == expected, f"{(s.client.me or {}).get('id')} saw another sequence"
