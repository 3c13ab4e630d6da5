# One place for every check, the same on a laptop and in CI.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: install engine run check lint types test bench faults clean

# The pip that comes with the Python is used as it is (no upgrade), so an install that only
# works with a newer pip fails here first.
$(BIN)/wirewatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

# Tests, lint and types on top of what running needs.
$(VENV)/.test-extra: $(BIN)/wirewatch
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.test-extra

## run: the pipeline on embedded defaults (embedded Redis and SQLite store under ./wirewatch-data)
run: $(BIN)/wirewatch
	$(BIN)/wirewatch run

## check: lint, types and the whole test suite
check: lint types test

lint: install
	$(BIN)/ruff check shared services tests
	$(BIN)/ruff format --check shared services tests

types: install
	$(BIN)/mypy

## engine: the real search node the tests run (Java 17 + Maven; the session also builds it when needed)
engine:
	cd tests/engine && mvn -q -B package dependency:copy-dependencies

test: install engine
	$(BIN)/pytest

## bench: throughput of the real chain on embedded defaults
bench: install
	$(BIN)/python tests/benchmarks/bench_pipeline.py

## faults: every fault (workers, fetchers, alerters killed; Redis restarted; receiver down; store locked), one table
faults: install
	$(BIN)/python -m tests.faults

clean:
	rm -rf $(VENV) wirewatch-data .pytest_cache .mypy_cache .ruff_cache tests/engine/target
