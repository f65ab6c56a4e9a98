"""One persona, thousands of people: the film's 8,316 conversations with Samantha.

    .venv/bin/python bench/personas.py --people 8316              # everyone at once
    .venv/bin/python bench/personas.py --people 8316 --rate 500   # then a steady 500 msg/s

Starts `os1 serve` (built-in personas, reflex mind) pinned to --server-cpu; this process
(the people, over raw sockets) is pinned to --client-cpu. Prints one JSON line: how many
were answered, reply latency p50/p99/max, and the hub's memory per conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from fanout import ROOT, SECRET, cpu_seconds, rss_kb, start_hub, token
from rawws import RawClient, connect, now_us


class Person:
    def __init__(self, n: int) -> None:
        self.n = n
        self.sent: dict[str, int] = {}  # cid -> send time (µs)
        self.latencies: list[int] = []
        self.client: RawClient | None = None
        self.answered = asyncio.Event()
        self.said = 0

    def on_msg(self, frame: dict) -> None:
        if frame["from"]["id"] != "samantha":
            return
        # the persona answers with reply_to = the seq it answers; match by arrival order
        if self.sent:
            cid = next(iter(self.sent))
            self.latencies.append(now_us() - self.sent.pop(cid))
            if not self.sent:
                self.answered.set()

    def say(self, text: str) -> None:
        assert self.client is not None
        self.said += 1
        cid = f"p{self.n}-{self.said}"
        self.sent[cid] = now_us()
        self.answered.clear()
        self.client.send({"t": "send", "room": "dm:samantha", "text": text, "cid": cid})


async def open_people(host: str, port: int, n: int) -> list[Person]:
    people = [Person(i) for i in range(n)]
    for batch in range(0, n, 200):
        chunk = people[batch: batch + 200]
        clients = await asyncio.gather(*(
            connect(host, port, token(f"person{p.n}"), p.on_msg) for p in chunk))
        for p, c in zip(chunk, clients, strict=True):
            p.client = c
    return people


def quantiles(lat: list[int]) -> dict[str, float | None]:
    lat = sorted(lat)

    def q(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1000, 1) if lat else None

    return {"p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)}


async def burst(people: list[Person], wait: float) -> dict:
    t0 = time.monotonic()
    for p in people:
        p.say(f"Hello Samantha, my name is Person{p.n} and I love jazz.")
    try:
        async with asyncio.timeout(wait):
            await asyncio.gather(*(p.answered.wait() for p in people))
    except TimeoutError:
        pass
    answered = sum(1 for p in people if not p.sent)
    lat = [x for p in people for x in p.latencies]
    return {"answered": answered, "of": len(people), "seconds": round(time.monotonic() - t0, 2),
            **quantiles(lat)}


async def steady(people: list[Person], rate: float, seconds: float) -> dict:
    for p in people:
        p.latencies.clear()
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < start + seconds:
        due = int((now - start) * rate)
        while sent < due:
            people[sent % len(people)].say("What should I cook tonight?")
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.sleep(3.0)
    lat = [x for p in people for x in p.latencies]
    unanswered = sum(len(p.sent) for p in people)
    return {"rate": rate, "sent": sent, "unanswered": unanswered, **quantiles(lat)}


def start_profile(args: argparse.Namespace, pid: int) -> subprocess.Popen[bytes]:
    """py-spy on the hub for the burst (--profile FILE: speedscope JSON, or raw if FILE
    ends in .txt); stopped with SIGINT when every person is answered."""
    fmt = "raw" if args.profile.endswith(".txt") else "speedscope"
    cmd = [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(pid), "--rate", "250",
           "--format", fmt, "-o", args.profile]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the burst starts
    return spy


def start_personas(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    """`os1 personas run --all` in its own process on --personas-cpu: the second core.

    ``--pace 0`` as embedded: the command's default types like a person (0.04 s between
    chunks), which with 64 minds at work caps a worker near 400 replies/s whatever the CPU."""
    env = dict(os.environ, OS1_SECRET=SECRET)
    cmd = ["taskset", "-c", str(args.personas_cpu), str(ROOT / ".venv/bin/os1"), "personas",
           "run", "--url", f"ws://127.0.0.1:{port}/ws", "--all", "--pace", "0"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main_async(args: argparse.Namespace) -> dict:
    embedded = "none" if args.split else "builtin"
    proc, host, port = start_hub(args, {
        "OS1_PERSONAS": embedded, "OS1_RATE_LIMIT": "50", "OS1_RATE_BURST": "100",
        # one persona connection carries every conversation; its own limit paces it
        "OS1_PERSONA_RATE_LIMIT": str(args.persona_rate),
        "OS1_PERSONA_RATE_BURST": str(2 * args.persona_rate)})
    workers = start_personas(args, port) if args.split else None
    try:
        await asyncio.sleep(3.0 if args.split else 1.5)  # personas come online
        base = rss_kb(proc.pid)
        people = await open_people(host, port, args.people)
        connected = rss_kb(proc.pid)
        spy = start_profile(args, proc.pid) if args.profile else None
        cpu0 = cpu_seconds(proc.pid)
        result = {"people": args.people, "burst": await burst(people, args.wait)}
        cpu = cpu_seconds(proc.pid) - cpu0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        result["burst"]["server_cpu_s"] = round(cpu, 2)
        # The noise-resistant number: the hub's (+ embedded personas') CPU time per answered
        # turn; wall time and latency move with whatever else runs on the machine.
        answered = result["burst"]["answered"]
        result["burst"]["cpu_us_per_turn"] = round(cpu / answered * 1e6) if answered else None
        after = rss_kb(proc.pid)
        result["memory"] = {
            "rss_idle_kb": base, "rss_connected_kb": connected, "rss_after_kb": after,
            "kb_per_person_connected": round((connected - base) / args.people, 1),
            "kb_per_conversation": round((after - connected) / args.people, 1),
        }
        if args.rate:
            result["steady"] = await steady(people, args.rate, args.seconds)
        result["layout"] = (
            f"hub on CPU {args.server_cpu}, personas process on CPU {args.personas_cpu}, "
            f"people on CPU {args.client_cpu}" if args.split else
            f"hub + personas on CPU {args.server_cpu}, people on CPU {args.client_cpu}")
        result["persona_rate"] = args.persona_rate
        return result
    finally:
        if workers is not None:
            workers.terminate()
            workers.wait(15)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # 8,316 sockets to close on a busy machine
            proc.kill()
            proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, default=8316)
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for every answer")
    p.add_argument("--rate", type=float, default=0.0, help="then a steady total msgs/s")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--split", action="store_true",
                   help="run the personas in their own process (os1 personas run --all)")
    p.add_argument("--personas-cpu", type=int, default=1)
    p.add_argument("--persona-rate", type=int, default=10_000,
                   help="OS1_PERSONA_RATE_LIMIT for the run (the hub default: 10,000)")
    p.add_argument("--profile", default="",
                   help="py-spy the hub during the burst into FILE (.txt: raw, else speedscope); "
                   "sampling pauses the hub: not for timings")
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
