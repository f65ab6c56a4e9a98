"""Timed subscribers in a process of their own: the latency of the hub, not the generator's.

A generator that reads 1,000 sockets spends ~10 µs of its own CPU on each; its timed
subscribers wait behind the others' reads, so what it measures at a low message rate is
mostly its own queue (several ms per message with 1,000 subscribers). This process holds
only the timed subscribers, so it reads each message as soon as the hub has written it.

    probe = await Probe.start(cpu, [("same_", host, port), ("cross_", host2, port2)], room, n)
    probe.begin()                  # after the warm-up: record from here
    quantiles = await probe.end()  # {"same_p50_ms": ..., "cross_p99_ms": ...}

Run as a script it is the child: it connects, joins, says "ready", records the latency of
every msg (send time in the text, as bench/fanout.py writes it), clears on "begin" and
prints one JSON line of quantiles on "end".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from rawws import connect, now_us

HERE = Path(__file__).resolve().parent
PYTHON = HERE.parent / ".venv/bin/python"


class Probe:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, cpu: int, nodes: list[tuple[str, str, int]], room: str, n: int) -> Probe:
        where = ",".join(f"{label}={host}:{port}" for label, host, port in nodes)
        proc = await asyncio.create_subprocess_exec(
            "taskset", "-c", str(cpu), str(PYTHON), str(HERE / "probe.py"), "--nodes", where,
            "--room", room, "--n", str(n), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        probe = cls(proc)
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        if line.strip() != b"ready":
            proc.kill()
            raise RuntimeError(f"probe did not start: {line!r}")
        return probe

    @property
    def pid(self) -> int:
        return self.proc.pid

    def begin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"begin\n")

    async def end(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"end\n")
        async with asyncio.timeout(30):
            line = await self.proc.stdout.readline()
            await self.proc.wait()
        return dict(json.loads(line))


async def child(args: argparse.Namespace) -> None:
    from fanout import join, quantiles, token

    lats: dict[str, list[int]] = {}
    clients = []
    for spec in args.nodes.split(","):
        label, _, addr = spec.partition("=")
        host, _, port = addr.rpartition(":")
        lat = lats.setdefault(label, [])

        def record(frame: dict, lat: list[int] = lat) -> None:
            lat.append(now_us() - int(frame["text"].split(" ", 1)[0]))

        for i in range(args.n):
            client = await connect(host, int(port), token(f"probe-{label}{i}"), record)
            await join(client, args.room)
            clients.append(client)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := (await reader.readline()).strip()) != b"end":
        if line == b"begin":
            for lat in lats.values():
                lat.clear()
        elif not line:
            return  # the generator is gone
    result: dict = {}
    for label, lat in lats.items():
        result.update(quantiles(sorted(lat), label))
    print(json.dumps(result), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", required=True, help="label=host:port,...")
    p.add_argument("--room", required=True)
    p.add_argument("--n", type=int, default=20, help="timed subscribers per node")
    uvloop.install()
    asyncio.run(child(p.parse_args()))


if __name__ == "__main__":
    main()
