#!/usr/bin/env python3
"""Replay throughput benchmark (`make bench`).

Generates a seeded 1,000,000-line Segment log of realistic shoppers with
`nudge simulate`, then alternates, in the same run, a parse-only pass
(deserialize every line into the same message type, nothing else) and a full
`nudge replay` with examples/triggers.toml, both on one thread. Reports the
median lines/s of each and the median of the per-round ratios, because these
machines are noisy.
"""
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUDGE = os.path.join(ROOT, "target", "release", "nudge")
OUT = os.path.join(ROOT, "bench-out")
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
LOG = os.path.join(OUT, f"shoppers-{EVENTS}-seed42.jsonl")
RATE = re.compile(r"throughput: (\d+) lines in ([\d.]+) s = (\d+) lines/s")


def run(args):
    p = subprocess.run([NUDGE, *args], capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"nudge {' '.join(args)} failed:\n{p.stderr}")
    m = RATE.search(p.stderr)
    if not m:
        sys.exit(f"no throughput line in:\n{p.stderr}")
    return int(m.group(3)), p.stderr


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(LOG):
        subprocess.run([NUDGE, "simulate", "--events", str(EVENTS), "--seed", "42", "--out", LOG], check=True)
    size = os.path.getsize(LOG)
    rules = os.path.join(ROOT, "examples", "triggers.toml")
    decisions = os.path.join(OUT, "decisions.jsonl")
    parse, replay, ratios = [], [], []
    summary = ""
    for i in range(ROUNDS):
        p, _ = run(["replay", "--parse-only", "--triggers", rules, LOG])
        r, summary = run(["replay", "--triggers", rules, "--out", decisions, LOG])
        parse.append(p)
        replay.append(r)
        ratios.append(p / r)
        print(f"round {i + 1}: parse-only {p:,} lines/s, replay {r:,} lines/s, ratio {p / r:.2f}", file=sys.stderr)
    result = {
        "lines": EVENTS,
        "bytes_per_line": round(size / EVENTS),
        "rounds": ROUNDS,
        "parse_only_lines_per_s_median": int(statistics.median(parse)),
        "replay_lines_per_s_median": int(statistics.median(replay)),
        "replay_over_parse_time_ratio_median": round(statistics.median(ratios), 2),
        "decisions": sum(1 for _ in open(decisions)),
    }
    with open(os.path.join(OUT, "replay.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(summary, file=sys.stderr)
    print(json.dumps(result, indent=2))
    print(
        f"\n| {EVENTS:,} lines (~{result['bytes_per_line']} B each), 1 thread | parse-only | replay | replay/parse time |\n"
        f"|---|---|---|---|\n"
        f"| median of {ROUNDS} rounds | {result['parse_only_lines_per_s_median']:,} lines/s | "
        f"{result['replay_lines_per_s_median']:,} lines/s | {result['replay_over_parse_time_ratio_median']} |"
    )


if __name__ == "__main__":
    main()
