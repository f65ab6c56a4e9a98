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
from probe import Probe
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


def core_ticks() -> list[tuple[int, int]]:
    """(busy, total) jiffies of every CPU, from /proc/stat."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            t = [int(x) for x in line.split()[1:]]
            idle = t[3] + t[4]  # idle + iowait
            out.append((sum(t[:8]) - idle, sum(t[:8])))
    return out


def core_util(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    pairs = zip(before, after, strict=True)
    return [round((b1 - b0) / max(1, t1 - t0), 2) for (b0, t0), (b1, t1) in pairs]


def limit_of(result: dict, placement: dict[str, int]) -> str:
    """What bounded a run: a saturated core (and who used it), or the offered load."""
    cores = result["cores"]
    if result["mode"] == "rate":
        return "offered load (rate mode)"
    busy = max(range(len(cores)), key=lambda c: cores[c])
    if cores[busy] < 0.9:
        return f"no core saturated (max cpu{busy} {cores[busy]}): the sender's ack window"
    users = sorted(((result[f"{n}_cpu_util"], n) for n, c in placement.items() if c == busy),
                   reverse=True)
    other = round(cores[busy] - sum(u for u, _ in users), 2)  # load from outside the run
    users += [(other, "other")] if other >= 0.05 else []
    return f"cpu{busy} {cores[busy]}: " + ", ".join(f"{n} {u}" for u, n in users)


def wait_quiet(idle_below: float = 0.1, within: float = 600.0) -> float:
    """Wait (at most `within` s) until every core is busy less than `idle_below` over one
    second, so another job on the machine does not skew a run; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        before = core_ticks()
        time.sleep(1.0)
        if max(core_util(before, core_ticks())) < idle_below:
            break
    return round(time.monotonic() - start, 1)


async def open_clients(host: str, port: int, n: int, room: str, sample: int,
                       lat: list[int], prefix: str = "s", stats: dict | None = None
                       ) -> list[RawClient]:
    """n subscribers of `room`, joined 100 at a time; `stats` gets the join retries."""
    def record(frame: dict) -> None:
        lat.append(now_us() - int(frame["text"].split(" ", 1)[0]))

    clients: list[RawClient] = []
    retries = 0
    for batch in range(0, n, 100):
        made = await asyncio.gather(*(
            connect(host, port, token(f"{prefix}{i}"), record if i < sample else None)
            for i in range(batch, min(n, batch + 100))
        ))
        retries += sum(await asyncio.gather(*(join(c, room) for c in made)))
        clients.extend(made)
    for i, c in enumerate(clients):
        c.decode = i < sample
    if stats is not None:
        stats["join_retries"] = stats.get("join_retries", 0) + retries
    return clients


async def join(client: RawClient, room: str, tries: int = 20) -> int:
    """Join, retrying what the hub could not do right now (`unavailable` under a join
    storm, with Redis); returns the number of retries."""
    for attempt in range(tries):
        reply = await client.request({"t": "join", "id": f"j{attempt}", "room": room,
                                      "create": True})
        if reply["t"] == "joined":
            return attempt
        await asyncio.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"join refused {tries} times: {reply}")


async def open_senders(host: str, port: int, room: str, count: int) -> list[RawClient]:
    senders = [await connect(host, port, token(f"sender{i}")) for i in range(count)]
    for sender in senders:
        await sender.request({"t": "join", "id": "j", "room": room})
    return senders


async def fanout(args: argparse.Namespace, host: str, port: int, pid: int) -> dict:
    lat: list[int] = []
    room = "group:bench"
    subs = await open_clients(host, port, args.subs, room, args.sample, lat)
    senders = await open_senders(host, port, room, args.senders)
    pids = {"server": pid, "generator": os.getpid()}
    probe = await Probe.start(args.cpu_probe, [("", host, port)], room, args.probe) if args.probe else None
    result = await measure(args, senders, subs, room, {"": lat}, pids, probe)
    result["limit"] = limit_of(result, {"server": args.server_cpu, "generator": args.client_cpu})
    return result


async def measure(args: argparse.Namespace, senders: list[RawClient], subs: list[RawClient],
                  room: str, lats: dict[str, list[int]], pids: dict[str, int],
                  probe: Probe | None = None) -> dict:
    """Send for args.seconds (after a 1 s warm-up); count deliveries; latency quantiles per
    group of sampled subscribers (key prefix -> samples); CPU per process and per core.
    Max mode keeps args.window sends unacked, split over the senders. With a ``probe``,
    its quantiles too, as probe_*: timed where the generator's own reads do not delay them."""
    if probe is not None:
        pids = {**pids, "probe": probe.pid}
    payload = "x" * args.size
    sent = 0

    def send_one(sender: RawClient) -> None:
        nonlocal sent
        sender.send({"t": "send", "id": sent, "room": room, "text": f"{now_us()} {payload}"})
        sent += 1

    async def pump_one(sender: RawClient, window: int, stop: float) -> None:
        for _ in range(window):
            send_one(sender)
        while time.monotonic() < stop:
            reply = await sender.replies.get()
            if reply.get("t") == "ack":
                send_one(sender)

    async def pump_max(stop: float) -> None:
        window = max(1, args.window // len(senders))
        await asyncio.gather(*(pump_one(s, window, stop) for s in senders))

    async def pump_rate(stop: float) -> None:
        start, first = time.monotonic(), sent
        while (now := time.monotonic()) < stop:
            due = int((now - start) * args.rate)
            while sent - first < due:
                send_one(senders[sent % len(senders)])
            await asyncio.sleep(0.002)

    async def drain_acks() -> None:
        await asyncio.gather(*(drain(s) for s in senders))

    async def drain(sender: RawClient) -> None:
        while True:
            await sender.replies.get()

    pump = pump_max if args.mode == "max" else pump_rate
    # warm-up, then measure
    await pump(time.monotonic() + 1.0)
    await asyncio.sleep(0.5)
    for lat in lats.values():
        lat.clear()
    if probe is not None:
        probe.begin()
    before, reads0 = sum(c.frames for c in subs), sum(c.reads for c in subs)
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    ticks0, t0 = core_ticks(), time.monotonic()
    sent0 = sent
    await pump(t0 + args.seconds)
    elapsed = time.monotonic() - t0
    delivered = sum(c.frames for c in subs) - before
    reads = sum(c.reads for c in subs) - reads0
    cores = core_util(ticks0, core_ticks())
    cpu = {name: (cpu_seconds(pid) - cpu0[name]) / elapsed for name, pid in pids.items()}
    probed = await probe.end() if probe is not None else {}
    drainer = asyncio.ensure_future(drain_acks())
    await asyncio.sleep(1.0)
    drainer.cancel()
    result: dict = {
        "mode": args.mode, "subs": args.subs, "size": args.size, "seconds": round(elapsed, 2),
        "msgs_per_s": round((sent - sent0) / elapsed), "deliveries_per_s": round(delivered / elapsed),
        "msgs_per_read": round(delivered / max(1, reads), 2),  # > 1: writes carry several msgs
    }
    for prefix, lat in lats.items():
        result.update(quantiles(sorted(lat), prefix))
    result.update({f"probe_{k}": v for k, v in probed.items()})
    result.update({f"{name}_cpu_util": round(u, 2) for name, u in cpu.items()})
    # what the listed processes do not explain: other load on the machine skews a run
    result["cores"], result["other_cpu"] = cores, round(max(0.0, sum(cores) - sum(cpu.values())), 2)
    return result


def quantiles(lat: list[int], prefix: str = "") -> dict:
    def q(p: float) -> float | None:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000 if lat else None

    return {f"{prefix}p50_ms": q(0.5), f"{prefix}p99_ms": q(0.99),
            f"{prefix}max_ms": lat[-1] / 1000 if lat else None,
            f"{prefix}latency_samples": len(lat),
            f"{prefix}mean_ms": round(statistics.fmean(lat) / 1000, 3) if lat else None}


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
    p.add_argument("--senders", type=int, default=1, help="sending connections (max mode splits "
                   "the window between them)")
    p.add_argument("--sample", type=int, default=20, help="subscribers that decode and time every msg")
    p.add_argument("--idle", type=int, default=0, help="open this many idle connections instead")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--probe", type=int, default=0,
                   help="timed subscribers in a process of their own (bench/probe.py); 0: none")
    p.add_argument("--cpu-probe", type=int, default=0)
    args = p.parse_args()
    os.sched_setaffinity(0, {args.client_cpu})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.install()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
