# ghplane: `make dev` runs the worker locally, `make test` runs every check and test.
# Both install what they need into git-ignored folders (.tools/, node_modules/) and skip
# what is already there. Nothing is downloaded from GitHub releases: worker-build is pointed
# at locally installed wasm-bindgen and esbuild.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

WORKER_BUILD_VERSION := 0.8.7
WASM_BINDGEN_VERSION := 0.2.130
TOOLS := $(CURDIR)/.tools
WASM_TARGET := wasm32-unknown-unknown

export PATH := $(TOOLS)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export WASM_BINDGEN_BIN := $(TOOLS)/bin/wasm-bindgen
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild
export WRANGLER_SEND_METRICS := false
export WRANGLER_SEND_ERROR_REPORTS := false
export CARGO_TERM_COLOR := never
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER := $(TOOLS)/bin/wasm-bindgen-test-runner

.PHONY: console console-check console-contract mutants cargo-mutants bench types help tools rust-target worker-build wasm-bindgen node build build-e2e no-test-switches layout dev test lint unit wasm-test e2e types-check fmt chromium deploy deploy-preflight deploy-check

help:
	@echo "make dev    start the worker on http://127.0.0.1:8787 (wrangler dev, local Durable Objects)"
	@echo "make test   fmt, clippy (host + wasm), unit, wasm, end-to-end tests and the types drift check"
	@echo "make build  build the worker into build/"
	@echo "make deploy ENV=staging|production   build and deploy (needs CLOUDFLARE_API_TOKEN)"
	@echo "make bench  ghplane vs the Octokit peer vs the no-op floor (target/bench/report.json)"
	@echo "make mutants  mutation testing of the security-critical core (docs/testing.md)"

tools: rust-target worker-build wasm-bindgen node

rust-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || { echo "installing rust target $(WASM_TARGET)"; rustup target add $(WASM_TARGET); }

worker-build:
	@if [ "$$($(TOOLS)/bin/worker-build --version 2>/dev/null)" != "$(WORKER_BUILD_VERSION)" ]; then \
	  echo "installing worker-build $(WORKER_BUILD_VERSION) into .tools (a few minutes, once)"; \
	  cargo install --quiet --root $(TOOLS) worker-build --version $(WORKER_BUILD_VERSION) --locked; \
	fi

# Not --locked: wasm-bindgen-cli's lockfile pins a webpki-roots release the registry no longer serves.
wasm-bindgen:
	@if [ "$$($(TOOLS)/bin/wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into .tools (a few minutes, once)"; \
	  cargo install --quiet --root $(TOOLS) wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

node: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@echo "installing wrangler (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: tools console
	@worker-build --release

# The admin console (console/): its API types generated from the worker's OpenAPI document,
# type-checked (a route the console uses that changes shape fails here), built by Vite into
# console/dist, which wrangler serves as static assets.
CONSOLE_OPENAPI := crates/core/src/openapi/openapi.json
console/src/lib/schema.d.ts: $(CONSOLE_OPENAPI) node_modules/.installed
	@npx openapi-typescript $(CONSOLE_OPENAPI) -o $@ --silent

console-check: node console/src/lib/schema.d.ts
	@echo "== console type check (svelte-check against the OpenAPI document)"
	@cd console && npx svelte-check --tsconfig ./tsconfig.json --fail-on-warnings

# The type check must fail when a route the console uses changes shape: shown on a temporary
# copy of the console typed from a changed OpenAPI document (scripts/console-contract-test.sh).
console-contract: node
	@echo "== console contract test (a changed route shape fails the type check)"
	@scripts/console-contract-test.sh

console: node console/src/lib/schema.d.ts
	@cd console && npx vite build --logLevel warn

# The end-to-end tests' build: the worker plus its test seams (cargo feature e2e-seams).
build-e2e: tools console
	@worker-build --release --features e2e-seams

.dev.vars:
	@echo "creating .dev.vars from .dev.vars.example with a generated ENCRYPTION_KEY"
	@key=$$(node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))"); \
	  sed "s|^ENCRYPTION_KEY=.*|ENCRYPTION_KEY=$$key|" .dev.vars.example > $@

dev: tools .dev.vars
	@wrangler dev --ip 127.0.0.1 --port 8787 --persist-to .wrangler/state

fmt:
	@cargo fmt --all

# No test switch in a deployed worker: nothing under src/ (or in the README) reads an E2E_ var.
no-test-switches:
	@echo "== no E2E_ switches in src/ or README.md"
	@if grep -rn 'E2E_' src README.md; then echo "test switches found (see above)"; exit 1; fi

# No file over 600 lines before its tests, no import cycle between files (scripts/check-layout.py;
# scripts/layout-allow.txt lists what is still being split, and only shrinks).
layout:
	@echo "== layout: file sizes and import cycles"
	@python3 scripts/check-layout.py

lint: tools no-test-switches layout console-check console-contract
	@echo "== cargo fmt --check"
	@cargo fmt --all -- --check
	@echo "== cargo clippy (host)"
	@cargo clippy --workspace --all-targets --quiet -- -D warnings
	@echo "== cargo clippy ($(WASM_TARGET))"
	@cargo clippy --workspace --lib --target $(WASM_TARGET) --quiet -- -D warnings

unit:
	@echo "== native unit tests"
	@cargo test --workspace --lib --bins

wasm-test: tools
	@echo "== wasm-bindgen tests in Node (Web Crypto)"
	@cargo test -p ghplane-webcrypto --target $(WASM_TARGET)

# Headless Chromium drives the installer's setup page in the e2e tests (Debian's package).
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing chromium and chromedriver (apt-get) for the browser tests"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	fi

e2e: build-e2e chromium
	@echo "== end-to-end tests on workerd (wrangler dev) against the fake GitHub"
	@cargo test --test e2e

# worker-configuration.d.ts must match wrangler.jsonc. Secrets are typed from
# .dev.vars.example so the result never depends on a developer's own .dev.vars. wrangler 4.86
# runs the custom build first, names the Durable Object classes from build/, ignores a path
# argument and ignores --env-file under --check: so build, regenerate in place, compare.
# Only the Env interface: the runtime's TypeScript types (500 KB) are for TypeScript workers,
# and plain `string` vars, so changing a var's value needs no regeneration (adding one does).
TYPES_CMD := wrangler types --env-file .dev.vars.example --include-runtime=false --strict-vars=false

types: build
	@$(TYPES_CMD) >/dev/null

types-check: build
	@echo "== wrangler types drift check"
	@tmp=$$(mktemp -d); cp worker-configuration.d.ts "$$tmp/committed.d.ts"; \
	  $(TYPES_CMD) >"$$tmp/log" 2>&1 || { cat "$$tmp/log"; exit 1; }; \
	  if ! diff -q "$$tmp/committed.d.ts" worker-configuration.d.ts >/dev/null; then \
	    diff -u "$$tmp/committed.d.ts" worker-configuration.d.ts | head -30; \
	    cp "$$tmp/committed.d.ts" worker-configuration.d.ts; rm -rf "$$tmp"; \
	    echo "worker-configuration.d.ts is stale: run 'make types'"; exit 1; fi; \
	  rm -rf "$$tmp"; echo "worker-configuration.d.ts is up to date"

test: lint unit wasm-test types-check deploy-check e2e

# Not part of `make test`: prints numbers, never fails on them. Installs wrk (Debian), the
# peers' npm packages and binaryen (npm) into target/bench on first use.
bench: tools
	@python3 tests/bench/bench.py

# Deployment. The checks come first, so a missing token fails before anything is installed or
# built. wrangler runs the build (`build.command`) itself, with the tool paths exported above.
DEPLOY_ENVS := staging production

deploy-preflight:
	@case " $(DEPLOY_ENVS) " in *" $(ENV) "*) ;; *) \
	  echo "make deploy: ENV must be one of: $(DEPLOY_ENVS) (e.g. make deploy ENV=staging)" >&2; exit 2;; esac
	@if [ -z "$${CLOUDFLARE_API_TOKEN:-}" ]; then \
	  echo "make deploy: CLOUDFLARE_API_TOKEN is not set. Create an API token with the" >&2; \
	  echo "'Edit Cloudflare Workers' template (dash.cloudflare.com/profile/api-tokens), export" >&2; \
	  echo "it (and CLOUDFLARE_ACCOUNT_ID if it reaches several accounts), then run this again." >&2; \
	  echo "Nothing was built or deployed. See docs/deploying.md." >&2; exit 2; fi

deploy: deploy-preflight tools
	@echo "== wrangler deploy --env $(ENV)"
	@wrangler deploy --env $(ENV)

# Every environment's configuration is valid and its bundle builds, without credentials.
deploy-check: tools
	@for env in $(DEPLOY_ENVS); do \
	  out=target/deploy-dry-run/$$env; rm -rf "$$out"; mkdir -p "$$out"; \
	  echo "== wrangler deploy --dry-run --env $$env"; \
	  wrangler deploy --dry-run --env $$env --outdir "$$out" >"$$out.log" 2>&1 || { cat "$$out.log"; exit 1; }; \
	  grep -E "Total Upload" "$$out.log" | sed "s/^/$$env: /" || { cat "$$out.log"; exit 1; }; \
	done

# Mutation testing of the security-critical core (docs/testing.md). Not part of `make test`:
# it rebuilds the core once per mutant (about 500) and takes over an hour on two cores. One
# job, each test run bounded; the report is in target/mutants/mutants.out.
CARGO_MUTANTS_VERSION := 27.1.0
MUTANTS_ROOT ?= $(TOOLS)
MUTANTS_FILES ?= signature.rs hex.rs webhook/signature.rs auth.rs admin_access/state.rs deploy/ticket.rs sealed.rs \
  mint/oidc.rs mint/policy/mod.rs mint/policy/config.rs mint/policy/authorize.rs \
  mint/policy/foreign.rs installer/claims.rs

cargo-mutants:
	@if [ "$$($(MUTANTS_ROOT)/bin/cargo-mutants mutants --version 2>/dev/null)" != "cargo-mutants $(CARGO_MUTANTS_VERSION)" ]; then \
	  echo "installing cargo-mutants $(CARGO_MUTANTS_VERSION) into $(MUTANTS_ROOT) (a few minutes, once)"; \
	  cargo install --quiet --root $(MUTANTS_ROOT) cargo-mutants --version $(CARGO_MUTANTS_VERSION) --locked; \
	fi

mutants: cargo-mutants
	@$(MUTANTS_ROOT)/bin/cargo-mutants mutants -p ghplane-core \
	  $(foreach f,$(MUTANTS_FILES),--file crates/core/src/$(f)) \
	  -j 1 --timeout 120 --build-timeout 300 --output target/mutants -- --lib
