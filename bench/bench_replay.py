#!/usr/bin/env python3
"""Replay throughput benchmark (`make bench`).

Generates a seeded 1,000,000-line Segment log of realistic shoppers with
`nudge simulate`, then alternates, in the same run, a parse-only pass
(deserialize every line into the same message type, nothing else) and a full
`nudge replay` with examples/triggers.toml on one thread, and the same replay
on every core (`--threads`, whose decisions must be byte-identical to one
thread's). Reports the median lines/s of each and the medians of the
per-round ratios, because these machines are noisy.

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
THREADS = os.cpu_count() or 1


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
    r, summary = run(["replay", "--threads", "1", "--triggers", rules, "--out", decisions, LOG], nudge)
    sharded = decisions + ".threads"
    t, _ = run(["replay", "--threads", str(THREADS), "--triggers", rules, "--out", sharded, LOG], nudge)
    if not filecmp.cmp(decisions, sharded, shallow=False):
        sys.exit(f"the replay on {THREADS} threads decided differently from the one on 1")
    print(
        f"round {i + 1}{label}: parse-only {p:,} lines/s, replay {r:,} lines/s (1 thread), "
        f"{t:,} lines/s ({THREADS} threads), parse/replay time {p / r:.2f}, speed-up {t / r:.2f}",
        file=sys.stderr,
    )
    return p, r, t, summary


def medians(runs):
    return {
        "parse_only_lines_per_s_median": int(statistics.median(p for p, _, _ in runs)),
        "replay_lines_per_s_median": int(statistics.median(r for _, r, _ in runs)),
        "replay_over_parse_time_ratio_median": round(statistics.median(p / r for p, r, _ in runs), 2),
        "threads": THREADS,
        "replay_all_threads_lines_per_s_median": int(statistics.median(t for _, _, t in runs)),
        "all_threads_over_one_thread_median": round(statistics.median(t / r for _, r, t in runs), 2),
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
        p, r, t, summary = measure(NUDGE, rules, decisions, "", i)
        plain.append((p, r, t))
        if pgo:
            p, r, t, _ = measure(NUDGE_PGO, rules, decisions_pgo, " (PGO)", i)
            guided.append((p, r, t))
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
        f"\n| {EVENTS:,} lines (~{result['bytes_per_line']} B each), median of {ROUNDS} rounds "
        f"| parse-only, 1 thread | replay, 1 thread | replay/parse time | replay, {THREADS} threads | speed-up |"
        f"\n|---|---|---|---|---|---|"
    )
    for name, m in rows:
        print(
            f"| {name} | {m['parse_only_lines_per_s_median']:,} lines/s | "
            f"{m['replay_lines_per_s_median']:,} lines/s | {m['replay_over_parse_time_ratio_median']} | "
            f"{m['replay_all_threads_lines_per_s_median']:,} lines/s | {m['all_threads_over_one_thread_median']} |"
        )
    if not pgo:
        print("(no target/pgo/nudge: bench/pgo_build.sh did not build one; see its message above)")


if __name__ == "__main__":
    main()
