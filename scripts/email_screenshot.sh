#!/usr/bin/env bash
# Renders the example cart reminder and photographs it in headless Chromium
# (installed from the distribution's packages when missing). Keeps the
# screenshot in test-artifacts/ and fails if the picture is blank.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_chromium.sh
out=test-artifacts
mkdir -p "$out"
cargo run --quiet -p nudge -- preview --template cart-reminder \
  --profile examples/profiles/cart-abandoner.json --out "$out" >/dev/null
profile_dir=$(mktemp -d)
trap 'rm -rf "$profile_dir"' EXIT
timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile_dir" --hide-scrollbars \
  --window-size=640,1400 --screenshot="$out/cart-reminder.png" "file://$PWD/$out/cart-reminder.html" 2>/dev/null
python3 - "$out/cart-reminder.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
# Decode the image data and count distinct pixel rows: a blank page has one.
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IDAT":
        idat += data[pos + 8:pos + 8 + length]
    pos += 12 + length
raw = zlib.decompress(idat)
stride = len(raw) // height
rows = {raw[i * stride + 1:(i + 1) * stride] for i in range(height)}
assert len(rows) > 50, f"screenshot looks blank ({len(rows)} distinct rows)"
print(f"screenshot: {sys.argv[1]} {width}x{height}, {len(rows)} distinct rows")
PY
