# The two commands a newcomer needs: `make serve` and `make test`.
# Both set everything up first (a virtualenv in .venv, system packages the tests use).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8001

.PHONY: setup serve test lint typecheck typecheck-js unit docs check-docs bench bench-short clean system-deps services vendor-highlightjs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

## Start the server and the dashboard on the embedded default (SQLite in the data directory).
serve: setup
	$(BIN)/storykit serve --host $(HOST) --port $(PORT)

## Everything CI checks: lint, types, the import contract, docs in sync, the whole test suite.
test: setup system-deps services lint typecheck check-docs unit

system-deps:
	@bash scripts/system-deps.sh

## PostgreSQL and Redis for the team (multi-replica) tests: started if down, else make test stops.
services:
	@bash scripts/services.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## The packages (pyproject.toml), then the tests (tests/mypy.toml): one run per test folder.
typecheck: setup
	$(BIN)/mypy
	@status=0; for target in tests/conftest.py tests/*/; do \
	  echo "$(BIN)/mypy --config-file tests/mypy.toml $$target"; \
	  $(BIN)/mypy --config-file tests/mypy.toml "$$target" || status=1; \
	done; exit $$status
	@$(MAKE) --no-print-directory typecheck-js

## The dashboard's JavaScript, type-checked from its JSDoc (checkJs) by the TypeScript the
## VS Code extension pins (vscode-extension/package-lock.json).
typecheck-js:
	@test -x vscode-extension/node_modules/.bin/tsc || (cd vscode-extension && npm ci --no-audit --no-fund)
	vscode-extension/node_modules/.bin/tsc -p tsconfig.dashboard.json

unit: setup
	$(BIN)/python -m pytest

docs: setup
	$(BIN)/python -m storykit.docgen --write

check-docs: setup
	$(BIN)/python -m storykit.docgen --check

## Re-fetch the vendored highlight.js build (npm registry, integrity pinned) into ui/vendor/.
vendor-highlightjs:
	@bash scripts/vendor-highlightjs.sh

## Every benchmark (each bench/bench_*.py), each printing its ratio against a baseline
## measured in the same run. `make test` runs each once with --short (tests/bench).
bench: setup system-deps services
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

bench-short: setup system-deps services
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script --short || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info test-artifacts
	rm -rf vscode-extension/node_modules vscode-extension/dist vscode-extension/out vscode-extension/*.vsix
