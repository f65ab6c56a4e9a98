"""Fan-out benchmark: one room, N subscribers, a hub on one core and this generator on another.

    .venv/bin/python bench/fanout.py --subs 1000 --mode max --seconds 10
    .venv/bin/python bench/fanout.py --subs 1000 --mode rate --rate 100 --seconds 10
    .venv/bin/python bench/fanout.py --idle 10000

Starts `os1 serve` pinned with taskset to --server-cpu (default 0) and pins itself to
--client-cpu (default 1). Prints one JSON line of results; docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from rawws import RawClient, connect, now_us

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-" + "y" * 40


def start_hub(
    args: argparse.Namespace, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, int]:
    env = dict(os.environ, OS1_SECRET=SECRET, OS1_DATA_DIR=tempfile.mkdtemp(), OS1_LOG_FORMAT="json",
               OS1_RATE_LIMIT="1000000", OS1_RATE_BURST="1000000", OS1_SEND_QUEUE="100000",
               OS1_PERSONAS="none")
    env.update(extra_env or {})
    cmd = ["taskset", "-c", str(args.server_cpu), str(ROOT / ".venv/bin/os1"), "serve", "--port", "0"]
    log = os.environ.get("BENCH_HUB_LOG")  # a file for the hub's logs, to see what limited a run
    stderr = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        m = re.search(r"OS1 hub on http://([\d.]+):(\d+)", line)
        if m:
            return proc, m.group(1), int(m.group(2))
    proc.kill()
    raise RuntimeError("hub did not start")


def token(sub: str, role: str = "human") -> str:
    from server import auth

    return auth.mint(SECRET, sub=sub, role=role, ttl=3600)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def open_clients(host: str, port: int, n: int, room: str, sample: int,
                       lat: list[int]) -> list[RawClient]:
    def record(frame: dict) -> None:
        lat.append(now_us() - int(frame["text"].split(" ", 1)[0]))

    clients: list[RawClient] = []
    for batch in range(0, n, 100):
        made = await asyncio.gather(*(
            connect(host, port, token(f"s{i}"), record if i < sample else None)
            for i in range(batch, min(n, batch + 100))
        ))
        clients.extend(made)
    for c in clients:
        c.send({"t": "join", "id": "j", "room": room, "create": True})
    for c in clients:
        await c.request({"t": "ping", "id": "sync"})
    for i, c in enumerate(clients):
        c.decode = i < sample
    return clients


async def fanout(args: argparse.Namespace, host: str, port: int, pid: int) -> dict:
    lat: list[int] = []
    room = "group:bench"
    subs = await open_clients(host, port, args.subs, room, args.sample, lat)
    sender = await connect(host, port, token("sender"))
    await sender.request({"t": "join", "id": "j", "room": room})
    sender.decode = True
    payload = "x" * args.size
    sent = 0

    async def pump_max(stop: float) -> None:
        nonlocal sent
        window = args.window
        for _ in range(window):
            sender.send({"t": "send", "id": sent, "room": room, "text": f"{now_us()} {payload}"})
            sent += 1
        while time.monotonic() < stop:
            reply = await sender.replies.get()
            if reply.get("t") == "ack":
                sender.send({"t": "send", "id": sent, "room": room, "text": f"{now_us()} {payload}"})
                sent += 1

    async def pump_rate(stop: float) -> None:
        nonlocal sent
        start = time.monotonic()
        while (now := time.monotonic()) < stop:
            due = int((now - start) * args.rate)
            while sent < due:
                sender.send({"t": "send", "id": sent, "room": room, "text": f"{now_us()} {payload}"})
                sent += 1
            await asyncio.sleep(0.002)

    async def drain_acks() -> None:
        while True:
            await sender.replies.get()

    pump = pump_max if args.mode == "max" else pump_rate
    # warm-up, then measure
    await pump(time.monotonic() + 1.0)
    await asyncio.sleep(0.5)
    lat.clear()
    before = sum(c.frames for c in subs)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    gen0 = cpu_seconds(os.getpid())
    sent0 = sent
    await pump(t0 + args.seconds)
    elapsed = time.monotonic() - t0
    delivered = sum(c.frames for c in subs) - before
    cpu = cpu_seconds(pid) - cpu0
    gen_cpu = cpu_seconds(os.getpid()) - gen0
    drainer = asyncio.ensure_future(drain_acks())
    await asyncio.sleep(1.0)
    drainer.cancel()
    lat.sort()

    def q(p: float) -> float | None:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000 if lat else None

    return {
        "mode": args.mode, "subs": args.subs, "size": args.size, "seconds": round(elapsed, 2),
        "msgs_per_s": round((sent - sent0) / elapsed), "deliveries_per_s": round(delivered / elapsed),
        "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lat[-1] / 1000 if lat else None,
        "latency_samples": len(lat), "server_cpu_util": round(cpu / elapsed, 2),
        "generator_cpu_util": round(gen_cpu / elapsed, 2),
        "mean_ms": round(statistics.fmean(lat) / 1000, 3) if lat else None,
    }


async def idle(args: argparse.Namespace, host: str, port: int, pid: int) -> dict:
    base = rss_kb(pid)
    clients = []
    for batch in range(0, args.idle, 200):
        clients += await asyncio.gather(*(connect(host, port, token(f"i{i}"))
                                          for i in range(batch, min(args.idle, batch + 200))))
    await asyncio.sleep(2.0)
    after = rss_kb(pid)
    return {"mode": "idle", "connections": len(clients), "rss_before_kb": base, "rss_after_kb": after,
            "kb_per_connection": round((after - base) / len(clients), 2)}


async def main_async(args: argparse.Namespace) -> dict:
    proc, host, port = start_hub(args)
    try:
        await asyncio.sleep(0.3)
        if args.idle:
            return await idle(args, host, port, proc.pid)
        return await fanout(args, host, port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subs", type=int, default=1000)
    p.add_argument("--mode", choices=["max", "rate"], default="max")
    p.add_argument("--rate", type=float, default=100.0, help="msgs/s in rate mode")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--size", type=int, default=150, help="filler characters per message text")
    p.add_argument("--window", type=int, default=64, help="unacked sends in max mode")
    p.add_argument("--sample", type=int, default=20, help="subscribers that decode and time every msg")
    p.add_argument("--idle", type=int, default=0, help="open this many idle connections instead")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    args = p.parse_args()
    os.sched_setaffinity(0, {args.client_cpu})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.install()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
