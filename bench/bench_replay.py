#!/usr/bin/env python3
"""Replay throughput benchmark (`make bench`).

Generates a seeded 1,000,000-line Segment log of realistic shoppers with
`nudge simulate`, then alternates, in the same run, a parse-only pass
(deserialize every line into the same message type, nothing else) and a full
`nudge replay` with examples/triggers.toml, both on one thread. Reports the
median lines/s of each and the median of the per-round ratios, because these
machines are noisy.

When `bench/pgo_build.sh` has built the profile-guided binary
(target/pgo/nudge), each round measures it too, right after the plain
release build, and its decisions must be byte-identical to the plain one's.
"""
import filecmp
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUDGE = os.path.join(ROOT, "target", "release", "nudge")
NUDGE_PGO = os.path.join(ROOT, "target", "pgo", "nudge")
OUT = os.path.join(ROOT, "bench-out")
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
LOG = os.path.join(OUT, f"shoppers-{EVENTS}-seed42.jsonl")
RATE = re.compile(r"throughput: (\d+) lines in ([\d.]+) s = (\d+) lines/s")


def run(args, nudge=NUDGE):
    p = subprocess.run([nudge, *args], capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"nudge {' '.join(args)} failed:\n{p.stderr}")
    m = RATE.search(p.stderr)
    if not m:
        sys.exit(f"no throughput line in:\n{p.stderr}")
    return int(m.group(3)), p.stderr


def measure(nudge, rules, decisions, label, i):
    p, _ = run(["replay", "--parse-only", "--triggers", rules, LOG], nudge)
    r, summary = run(["replay", "--triggers", rules, "--out", decisions, LOG], nudge)
    print(f"round {i + 1}{label}: parse-only {p:,} lines/s, replay {r:,} lines/s, ratio {p / r:.2f}", file=sys.stderr)
    return p, r, summary


def medians(runs):
    parse = [p for p, _ in runs]
    replay = [r for _, r in runs]
    return {
        "parse_only_lines_per_s_median": int(statistics.median(parse)),
        "replay_lines_per_s_median": int(statistics.median(replay)),
        "replay_over_parse_time_ratio_median": round(statistics.median(p / r for p, r in runs), 2),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(LOG):
        subprocess.run([NUDGE, "simulate", "--events", str(EVENTS), "--seed", "42", "--out", LOG], check=True)
    size = os.path.getsize(LOG)
    rules = os.path.join(ROOT, "examples", "triggers.toml")
    decisions = os.path.join(OUT, "decisions.jsonl")
    decisions_pgo = os.path.join(OUT, "decisions-pgo.jsonl")
    pgo = os.path.exists(NUDGE_PGO)
    plain, guided = [], []
    summary = ""
    for i in range(ROUNDS):
        p, r, summary = measure(NUDGE, rules, decisions, "", i)
        plain.append((p, r))
        if pgo:
            p, r, _ = measure(NUDGE_PGO, rules, decisions_pgo, " (PGO)", i)
            guided.append((p, r))
            if not filecmp.cmp(decisions, decisions_pgo, shallow=False):
                sys.exit("the PGO build decided differently from the plain release build")
    result = {
        "lines": EVENTS,
        "bytes_per_line": round(size / EVENTS),
        "rounds": ROUNDS,
        **medians(plain),
        "decisions": sum(1 for _ in open(decisions)),
    }
    if pgo:
        result["pgo"] = medians(guided)
    with open(os.path.join(OUT, "replay.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(summary, file=sys.stderr)
    print(json.dumps(result, indent=2))
    rows = [("release build", result)] + ([("profile-guided build (PGO)", result["pgo"])] if pgo else [])
    print(
        f"\n| {EVENTS:,} lines (~{result['bytes_per_line']} B each), 1 thread, median of {ROUNDS} rounds "
        f"| parse-only | replay | replay/parse time |\n|---|---|---|---|"
    )
    for name, m in rows:
        print(
            f"| {name} | {m['parse_only_lines_per_s_median']:,} lines/s | "
            f"{m['replay_lines_per_s_median']:,} lines/s | {m['replay_over_parse_time_ratio_median']} |"
        )
    if not pgo:
        print("(no target/pgo/nudge: bench/pgo_build.sh did not build one; see its message above)")


if __name__ == "__main__":
    main()
