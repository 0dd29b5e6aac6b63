# aoms — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help demo test check lint typecheck layers bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aoms needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## Load the demo store, send signed Shopify webhooks, leave the API on 127.0.0.1:8000
	$(BIN)/aoms demo

test: $(STAMP)  ## Run the whole test suite (SQLite and PostgreSQL)
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)  ## Ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict
	$(BIN)/mypy

layers: $(STAMP)  ## import-linter contracts
	$(BIN)/lint-imports

check: lint typecheck layers test  ## The one gate: lint, types, layers, tests

bench: $(STAMP)  ## Run the benchmarks (see docs/benchmarks.md)
	$(BIN)/python benchmarks/bench_routing.py
	$(BIN)/python benchmarks/bench_webhooks.py --db sqlite
	$(BIN)/python benchmarks/bench_webhooks.py --db postgres
	$(BIN)/python benchmarks/bench_rate_shopping.py
	$(BIN)/python benchmarks/bench_shopify_sync.py
	$(BIN)/python benchmarks/bench_dashboard.py --db sqlite
	$(BIN)/python benchmarks/bench_dashboard.py --db postgres

clean:  ## Remove the virtual environment and local databases
	rm -rf $(VENV) aoms.db aoms-demo.db .pytest_cache .mypy_cache .ruff_cache
