#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder with cargo-fuzz (libFuzzer).
# usage: scripts/fuzz.sh SECONDS_PER_TARGET
# Seeds come from the vendors' sample payloads in fixtures/. Prints
# the executions each target ran without a crash; any crash fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
fixtures=fixtures
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
# cargo-fuzz passes -Z flags (sanitizers); stable rustc accepts them when told to.
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seed() { # target file prefix-byte
  mkdir -p "$work/$1"
  { printf "\\x$(printf %02x "$3")"; cat "$2"; } > "$work/$1/$(basename "$2").$3"
}
i=0; for f in "$fixtures"/shopify/*.json; do seed shopify "$f" $((i++)); done
i=0; for f in "$fixtures"/woocommerce/*.json; do seed woocommerce "$f" $((i++)); done
for f in "$fixtures"/segment/*.json "$fixtures"/segment/ecommerce-v2/*.json; do seed segment "$f" 0; seed segment "$f" 1; done
mkdir -p "$work/rules"; cp examples/triggers.toml "$work/rules/"
total=0
for target in shopify woocommerce segment rules; do
  log="$work/$target.log"
  if ! cargo fuzz run --fuzz-dir fuzz "$target" "$work/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -40 "$log"; echo "fuzz target $target FAILED"; exit 1
  fi
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
  echo "fuzz $target: ${runs:-0} executions in ${secs}s, no crash"
  total=$((total + ${runs:-0}))
done
echo "fuzz: $total executions in total without a crash"
