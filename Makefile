# nudge — `make demo` and `make test` are the quick start; both check for
# what they need first.
SHELL := /bin/bash
CARGO ?= cargo
# Python tools installed by scripts/ensure_python_tools.sh when the system lacks them.
export PATH := $(CURDIR)/.venv-tools/bin:$(PATH)
FUNCTIONS := shopify-webhook woocommerce-webhook track check ses-events unsubscribe reconcile
RULES ?= examples
# The nudge command rules-layer runs (bench passes its release build).
NUDGE ?= $(CARGO) run --quiet -p nudge --

.PHONY: local-aws local-aws-demo install demo test bench nudge-pgo fuzz fmt lint check-rust clean build-lambdas rules-layer deploy-sam deploy-tf watch infra-check ensure-cargo-lambda

## demo: replay the example scenarios and show who gets which email and why
demo: check-rust
	@test -x "$${CARGO_TARGET_DIR:-target}/debug/nudge" || \
	  echo "Building nudge first: about 4 minutes on 2 cores the first time, seconds after that."
	$(CARGO) run -p nudge -- demo --examples examples

## install: the nudge command into cargo's bin directory (~/.cargo/bin, on PATH after rustup)
install: check-rust
	@echo "Building nudge in release mode: about 6 minutes on 2 cores the first time."
	$(CARGO) install --locked --path cli
	@command -v nudge >/dev/null && echo "nudge is on your PATH: $$(command -v nudge)" || \
	  echo "Installed into $${CARGO_INSTALL_ROOT:-$${CARGO_HOME:-$$HOME/.cargo}}/bin: add that directory to your PATH."

## test: formatting, lints, every test in the workspace (the AWS shell against
## moto), the infrastructure checks, the local AWS demo, an email screenshot in
## headless Chromium (test-artifacts/), and a short fuzz run
test: check-rust ensure-cargo-lambda
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	bash scripts/ensure_chromium.sh
	bash scripts/ensure_python_tools.sh
	bash scripts/ensure_smtp_sink.sh
	$(CARGO) test --workspace
	python3 scripts/check_infra.py
	python3 scripts/local_aws.py demo
	bash scripts/email_screenshot.sh
	bash scripts/fuzz.sh 10

## infra-check: cfn-lint, sam-translator, terraform fmt/validate, checkov, SAM = Terraform, one settings list
infra-check: check-rust
	bash scripts/ensure_python_tools.sh
	python3 scripts/check_infra.py

ensure-cargo-lambda:
	@command -v cargo-lambda >/dev/null || python3 -m pip install --quiet cargo-lambda || { python3 -m venv .venv-tools && .venv-tools/bin/pip install --quiet cargo-lambda; }

## build-lambdas: the seven functions for arm64 → target/lambda/<function>/bootstrap.zip
build-lambdas: check-rust ensure-cargo-lambda
	$(CARGO) lambda build --release --arm64 --output-format zip $(addprefix -p ,$(FUNCTIONS))

## rules-layer: triggers.toml, templates/ (checked and precompiled) and catalogue.json from RULES (default examples) → target/rules-layer.zip
rules-layer: check-rust
	rm -rf target/rules-layer && mkdir -p target/rules-layer/rules
	cp -r $(RULES)/triggers.toml $(RULES)/templates target/rules-layer/rules/
	if [ -f $(RULES)/catalogue.json ]; then cp $(RULES)/catalogue.json target/rules-layer/rules/; fi
	$(NUDGE) check --triggers target/rules-layer/rules/triggers.toml \
	  --templates target/rules-layer/rules/templates --compile target/rules-layer/rules/templates/compiled
	rm -f target/rules-layer.zip && cd target/rules-layer && python3 -m zipfile -c ../rules-layer.zip rules

## deploy-sam: build with SAM (rust-cargolambda) and deploy, asking for the parameters the first time
deploy-sam: rules-layer ensure-cargo-lambda
	command -v sam >/dev/null || python3 -m pip install --quiet aws-sam-cli
	cd infra/sam && sam build --beta-features && sam deploy --guided

## deploy-tf: deploy infra/terraform/examples/minimal with the zips from build-lambdas and rules-layer
deploy-tf: build-lambdas rules-layer
	cd infra/terraform/examples/minimal && terraform init && terraform apply

## watch: emulate the Lambda runtime locally (settings from [workspace.metadata.lambda.watch.env])
watch: ensure-cargo-lambda
	$(CARGO) lambda watch --invoke-address 127.0.0.1 --invoke-port 9001

## local-aws: moto with the stacks' table, schedule group and SES set up, and the seven functions under
## `cargo lambda watch` pointed at it (Ctrl-C stops both)
local-aws: check-rust ensure-cargo-lambda
	bash scripts/ensure_python_tools.sh
	python3 scripts/local_aws.py up

## local-aws-demo: a signed Shopify checkout in, the check when it is due, and the email moto's SES
## received (against `make local-aws` if it runs, else a stack of its own for the demo)
local-aws-demo: check-rust ensure-cargo-lambda
	bash scripts/ensure_python_tools.sh
	python3 scripts/local_aws.py demo

## invoke-<function>: send events/<function>.json and events/<function>.*.json to `make watch` (e.g. make invoke-check)
invoke-%: ensure-cargo-lambda
	@for f in events/$*.json events/$*.*.json; do [ -f "$$f" ] || continue; echo "== $$f"; \
	  $(CARGO) lambda invoke $* --invoke-address 127.0.0.1 --invoke-port 9001 --data-file "$$f" || exit 1; echo; done

## fuzz: every decoder under libFuzzer for 5 minutes each
fuzz: check-rust
	bash scripts/fuzz.sh 300

## bench: replay throughput on a generated 1M-line log, email renders/s, signed deliveries/s against nudge serve
## (and a 10-minute soak: memory, WAL, latency, nothing lost),
## and each Lambda function's init time against a hello-world lambda_runtime binary, on the rules layer (see README)
bench: check-rust
	$(CARGO) build --release -p nudge --bin nudge
	$(CARGO) build --release -p nudge-bench --bins
	bash bench/pgo_build.sh || echo "bench: no profile-guided build; the replay is measured on the release build only"
	python3 bench/bench_replay.py
	./target/release/render_bench
	@for c in 64 256; do ./target/release/serve_load target/release/nudge 20000 $$c; done
	./target/release/serve_load target/release/nudge 20000 64 4
	./target/release/serve_load --soak 600 target/release/nudge 16 20000
	$(CARGO) build --release $(addprefix -p ,$(FUNCTIONS))
	$(MAKE) --no-print-directory rules-layer NUDGE=target/release/nudge
	INIT_BENCH_ROUNDS=301 INIT_BENCH_RULES=target/rules-layer/rules ./target/release/init_bench target/release/hello_lambda \
	  target/release/hello_lambda_current_thread $(addprefix target/release/,$(FUNCTIONS))

## nudge-pgo: a profile-guided (PGO) nudge at target/pgo/nudge, ~1.4x faster replays of big logs
nudge-pgo: check-rust
	bash bench/pgo_build.sh

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
