#!/usr/bin/env bash
# Builds a profile-guided `nudge` (PGO) at target/pgo/nudge: an instrumented
# build runs a training replay (and a parse-only pass) over a generated log
# with another seed than the benchmark's, llvm-profdata merges what it
# counted, and the release build is made again with that profile. Same
# code, same profile settings; only LLVM's layout and inlining choices
# follow the measured hot paths. `make bench` measures it beside the plain
# release build; `make nudge-pgo` builds it alone.
#
# llvm-profdata: rustup's llvm-tools when installed (the exact LLVM of
# rustc), otherwise a Debian llvm-NN package (installed when missing and
# run as root). An llvm-profdata too old to read rustc's raw profiles fails
# the merge with its own message, and this script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
host=$(rustc -vV | sed -n 's/^host: //p')
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
# A build that fails must not leave an older one for `make bench` to measure.
rm -f "$root/target/pgo/nudge"

# The newest llvm-profdata for LLVM 19..$1 (rustc's major first).
find_profdata() {
  local tools v
  tools="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
  if [ -x "$tools" ]; then echo "$tools"; return; fi
  for v in $(seq "$1" -1 19); do
    if [ -x "/usr/lib/llvm-$v/bin/llvm-profdata" ]; then echo "/usr/lib/llvm-$v/bin/llvm-profdata"; return; fi
  done
}

# Debian's newest llvm-NN package for LLVM 19..rustc's major, when root.
install_llvm() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
  local pkg
  pkg=$(apt-cache search --names-only '^llvm-[0-9]+$' | cut -d' ' -f1 | sort -t- -k2 -n |
    awk -F- -v max="$llvm_major" '$2 >= 19 && $2 <= max' | tail -1)
  [ -n "$pkg" ] && [ ! -x "/usr/lib/$pkg/bin/llvm-profdata" ] || return 0
  echo "pgo: installing Debian's $pkg for llvm-profdata" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
}

# rustc's own LLVM version reads its raw profiles for sure: prefer it.
profdata=$(find_profdata "$llvm_major" | grep -e "rustlib" -e "llvm-$llvm_major/" || true)
if [ -z "$profdata" ]; then
  install_llvm
  profdata=$(find_profdata "$llvm_major")
fi
if [ -z "$profdata" ]; then
  echo "pgo: no llvm-profdata for LLVM 19..$llvm_major: rustup component add llvm-tools, or apt-get install llvm-$llvm_major" >&2
  exit 1
fi

data="$root/target/pgo/profiles"
rm -rf "$data" && mkdir -p "$data" "$root/target/pgo"
# --target keeps build scripts and proc macros out of the instrumentation.
CARGO_TARGET_DIR="$root/target/pgo/gen" RUSTFLAGS="-Cprofile-generate=$data" \
  cargo build --release --quiet --target "$host" -p nudge --bin nudge
gen="$root/target/pgo/gen/$host/release/nudge"
log="$root/target/pgo/train-200000-seed7.jsonl"
[ -s "$log" ] || "$gen" simulate --events 200000 --seed 7 --out "$log"
rules="$root/examples/triggers.toml"
"$gen" replay --triggers "$rules" --out /dev/null "$log" 2>/dev/null
"$gen" replay --parse-only --triggers "$rules" "$log" 2>/dev/null
"$profdata" merge -o "$root/target/pgo/nudge.profdata" "$data"/*.profraw
CARGO_TARGET_DIR="$root/target/pgo/use" RUSTFLAGS="-Cprofile-use=$root/target/pgo/nudge.profdata" \
  cargo build --release --quiet --target "$host" -p nudge --bin nudge
cp "$root/target/pgo/use/$host/release/nudge" "$root/target/pgo/nudge"
echo "pgo: target/pgo/nudge (profile merged with $profdata)" >&2
