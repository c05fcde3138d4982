# One entry point for every routine task. `make demo` and `make test` work on a
# fresh machine: they create .venv, install, and start the services they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install postgres demo dev test test-fast fuzz lint fmt bench bench-quick clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

# Postgres: use one on 127.0.0.1:5432 (or DATABASE_URL); otherwise the fixtures start a
# throwaway cluster from /usr/lib/postgresql/*/bin, which this installs if it is missing.
postgres:
	@if [ -n "$$DATABASE_URL" ] || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null \
	   || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	   echo "installing PostgreSQL (no server reachable, no binaries found)"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null); fi

demo: install postgres
	$(BIN)/punchline demo

dev: install postgres
	$(BIN)/punchline dev

test: install postgres
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install postgres
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

# Schemathesis over every OpenAPI operation with a larger budget than `make test`'s
# (tests/test_fuzz_openapi.py; PUNCHLINE_FUZZ_SEED picks another fixed seed).
fuzz: install postgres
	PUNCHLINE_FUZZ_EXAMPLES=$${PUNCHLINE_FUZZ_EXAMPLES:-200} $(BIN)/pytest -q -p no:cacheprovider -m fuzz $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark (~12 min); rewrites docs/benchmarks.md and docs/benchmarks.png.
bench: install postgres
	$(BIN)/python bench/run_all.py

bench-quick: install postgres
	$(BIN)/python bench/run_all.py --quick

clean:
	rm -rf $(VENV) .punchline .pytest_cache .mypy_cache .ruff_cache .hypothesis
