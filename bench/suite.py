"""Run every hub benchmark scenario `--repeat` times and print medians as a markdown table.

    .venv/bin/python bench/suite.py --repeat 3 > /tmp/results.md

Each run is a fresh `bench/fanout.py` process (hub pinned to CPU 0, generator to CPU 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = [
    ("100 subs, max rate", ["--subs", "100", "--mode", "max", "--sample", "5"]),
    ("1,000 subs, max rate", ["--subs", "1000", "--mode", "max", "--sample", "5"]),
    ("100 subs, 1,000 msg/s (100k deliveries/s)", ["--subs", "100", "--mode", "rate",
                                                    "--rate", "1000", "--sample", "20"]),
    ("1,000 subs, 100 msg/s (100k deliveries/s)", ["--subs", "1000", "--mode", "rate",
                                                    "--rate", "100", "--sample", "50"]),
    ("1,000 subs, 20 msg/s (20k deliveries/s)", ["--subs", "1000", "--mode", "rate",
                                                  "--rate", "20", "--sample", "50"]),
]
IDLE = ("10,000 idle connections", ["--idle", "10000"])
KEYS = ["deliveries_per_s", "p50_ms", "p99_ms", "max_ms", "server_cpu_util", "generator_cpu_util"]


def run(args: list[str], seconds: float) -> dict:
    cmd = [sys.executable, str(HERE / "fanout.py"), "--seconds", str(seconds), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--skip-idle", action="store_true")
    args = p.parse_args()
    print("| scenario | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for name, extra in SCENARIOS:
        rows = [run(extra, args.seconds) for _ in range(args.repeat)]
        print(f"| {name} | " + " | ".join(str(median(rows, k)) for k in KEYS) + " |", flush=True)
    if not args.skip_idle:
        rows = [run(IDLE[1], args.seconds) for _ in range(args.repeat)]
        print(f"\n{IDLE[0]}: median {median(rows, 'kb_per_connection')} kB per connection "
              f"(runs: {[r['kb_per_connection'] for r in rows]})")


if __name__ == "__main__":
    main()
