# iac-wrapper — every target runs the idempotent bootstrap it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPX := npx --no-install
PY := .venv/bin/python
FILE ?= repos.yaml
DEMO_FILE ?= examples/demo.yaml
# No IAC_* defaults here: settings come from the environment, then .env, then what
# `make bootstrap` recorded (the images it found, pulled or built), then built-in defaults.
# Where scripts/bootstrap.sh puts a terraform it had to build (only used when none is on PATH).
export PATH := $(PATH):$(or $(IAC_CACHE_DIR),$(HOME)/.cache/iac-wrapper)/bin

.PHONY: help bootstrap provision images deps build proto proto-check test test-all test-unit test-component test-integration test-faults test-contract test-corpus test-swarm test-runner fmt lint plan apply deploy destroy health demo demo-destroy bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

bootstrap: ## install deps, hooks, Docker engine, base + Envoy images, terraform + provider; link `iac` onto PATH
	@bash scripts/bootstrap.sh all cli

# What the other targets need (everything `bootstrap` does except linking `iac` onto PATH).
provision:
	@bash scripts/bootstrap.sh all

deps: ## Node and Python deps only
	@bash scripts/bootstrap.sh node python

build: ## compile src/ to dist/ (what bin/iac.js runs; also done by bootstrap and every target)
	@node scripts/build.mjs

proto: deps ## regenerate TS and Python code from proto/controlplane.proto
	@bash scripts/gen-proto.sh

proto-check: proto ## fail when generated code is stale
	@git diff --exit-code --stat -- src/gen runner/iac_runner/gen || { echo "generated code is stale: run 'make proto' and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- src/gen runner/iac_runner/gen)" || { git status --porcelain -- src/gen runner/iac_runner/gen; echo "untracked generated files: run 'make proto' and commit" >&2; exit 1; }

test: provision ## the fast suite (~1 min warm): runner pytest + unit + component + hostile + smoke (a real deploy through Envoy)
	@bash scripts/test.sh

test-all: test test-integration test-faults test-contract test-corpus ## everything CI runs except test-swarm (~7 min warm)

test-unit: deps ## fast unit tests only (no Docker)
	@$(NPX) vitest run --project unit

test-component: deps ## component tests: real servers on loopback, no Docker
	@$(NPX) vitest run --project component

test-integration: provision ## the rest of the real-Docker suite: lifecycle, mesh, runtimes, CLI, no-op/destroy fast paths (~3 min)
	@bash scripts/test.sh integration

test-faults: provision ## fault injection (real Docker, terraform: signals, broken state, crash loops, follow; ~2 min)
	@bash scripts/test.sh faults

test-contract: provision ## the admin API against its OpenAPI document: schemathesis, all checks, a real `iac serve` (~1 min)
	@IAC_CONTRACT_TEST=1 $(NPX) vitest run --project contract

test-corpus: provision ## the real-world corpus and the bundled repos.yaml, built and run (real Docker; ~1 min warm)
	@IAC_CORPUS_TEST=1 $(NPX) vitest run --project corpus

test-swarm: provision ## swarm target for real: 3 dockerd in network namespaces (root, ~8 min)
	@IAC_SWARM_TEST=1 $(NPX) vitest run --project swarm

test-runner: deps ## runner pytest with coverage
	@cd runner && ../$(PY) -m pytest -q --cov=iac_runner --cov-report=term-missing:skip-covered

fmt: deps ## format TS, Python and HCL
	@$(NPX) prettier --log-level warn --write .
	@$(NPX) eslint --fix . || true
	@.venv/bin/ruff format runner bench 2>/dev/null || .venv/bin/ruff format runner
	@terraform fmt -recursive infra

lint: deps ## ESLint, Prettier, tsc, ruff, terraform fmt -check + validate
	@$(NPX) eslint .
	@$(NPX) prettier --check --log-level warn .
	@$(NPX) tsc --noEmit -p .
	@.venv/bin/ruff check runner
	@.venv/bin/ruff format --check runner
	@bash scripts/tf-validate.sh

plan: provision ## iac plan --file $(FILE)
	@node bin/iac.js plan --file $(FILE)

apply deploy: provision ## iac deploy --file $(FILE)
	@node bin/iac.js deploy --file $(FILE)

destroy: provision ## iac destroy (project $$IAC_PROJECT)
	@node bin/iac.js destroy

health: provision ## iac health
	@node bin/iac.js health

demo: provision ## deploy the bundled example repos (offline) as project 'demo'
	@bash scripts/demo.sh

demo-destroy: provision ## remove the demo project
	@node bin/iac.js destroy --project demo --network iac-demo --yes

images: provision ## which base and Envoy images are used, and why
	@node bin/iac.js images

bench: provision ## print benchmark numbers (builds, deploys, Envoy, API)
	@bash scripts/bench.sh
