# nudge — `make demo` and `make test` are the quick start; both check for
# what they need first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test bench fuzz fmt lint check-rust clean

## demo: replay the example scenarios and show who gets which email and why
demo: check-rust
	$(CARGO) run --quiet -p nudge -- demo --examples examples

## test: formatting, lints, every test in the workspace, an email screenshot
## in headless Chromium (test-artifacts/), and a short fuzz run
test: check-rust
	$(CARGO) fmt --all -- --check
		$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	bash scripts/ensure_chromium.sh
	$(CARGO) test --workspace
	bash scripts/email_screenshot.sh
	bash scripts/fuzz.sh 10

## fuzz: every decoder under libFuzzer for 5 minutes each
fuzz: check-rust
	bash scripts/fuzz.sh 300

## bench: replay throughput on a generated 1M-line log, and email renders/s (see README)
bench: check-rust
	$(CARGO) build --release -p nudge
	python3 scripts/bench_replay.py
	$(CARGO) run --release --quiet -p nudge-content --example render_bench

## fmt: format the code
fmt: check-rust
	$(CARGO) fmt --all

## lint: clippy with warnings as errors
lint: check-rust
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-rust:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
		@command -v python3 >/dev/null || { echo "python3 not found: install it (e.g. apt-get install python3 python3-venv)"; exit 1; }
	@python3 -c "import venv, ensurepip" 2>/dev/null || { echo "python3 lacks venv/ensurepip: apt-get install python3-venv"; exit 1; }

clean:
	$(CARGO) clean
	rm -rf bench-out
