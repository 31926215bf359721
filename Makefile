# Every target creates its own virtual environment on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export LMDP_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(LMDP_HOME)/dagster
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The oldest DuckDB that must open the extracts, in an environment of its own (a slow test opens one with it).
OLD_DUCKDB ?= 1.4.0
OLD_DUCKDB_VENV ?= .venv-duckdb-$(OLD_DUCKDB)
export LMDP_OLD_DUCKDB_PYTHON ?= $(CURDIR)/$(OLD_DUCKDB_VENV)/bin/python

.PHONY: setup browser age old-duckdb postgres demo test test-fast ui validate bench bench-scale clean mutants

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/lmdp demo

# The UI end-to-end test drives Debian's chromium (no browser download); installed once if missing.
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the UI end-to-end test"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# Debian's age decrypts the transfer package in a slow test, as the remote-access environment would.
age:
	@command -v age >/dev/null || { echo "installing Debian's age for the package decryption test"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q age; }

$(OLD_DUCKDB_VENV)/bin/python:
	$(PYTHON) -m venv $(OLD_DUCKDB_VENV)
	$(OLD_DUCKDB_VENV)/bin/python -m pip install --quiet 'duckdb==$(OLD_DUCKDB)'

old-duckdb: $(OLD_DUCKDB_VENV)/bin/python

# The production-configuration test runs a throw-away PostgreSQL cluster (Debian's postgresql package).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "installing Debian's postgresql for the PostgreSQL deployment test"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

test: setup browser age old-duckdb postgres
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# After `make demo`, the UI may use the demo's development master key, and says so; a real
# deployment sets LMDP_MASTER_KEY or LMDP_MASTER_KEY_FILE and never LMDP_DEVELOPMENT_KEY.
ui: setup
	mkdir -p -m 700 $(DAGSTER_HOME)
	@if [ -z "$${LMDP_MASTER_KEY+set}$${LMDP_MASTER_KEY_FILE+set}" ] && [ -f "$(LMDP_HOME)/keys/development-master-key.b64" ]; then \
		echo "WARNING: the UI uses the DEVELOPMENT master key in $(LMDP_HOME)/keys (demo data only)"; \
		export LMDP_DEVELOPMENT_KEY=1; fi; \
	$(BIN)/dagster dev -w workspace.yaml

validate: setup
	$(BIN)/dagster definitions validate -w workspace.yaml

clean:
	rm -rf $(VENV) $(OLD_DUCKDB_VENV) var .pytest_cache

# Plants each catalogued bug in a copy of the privacy-critical code and runs the tests that must catch it.
mutants: setup
	$(BIN)/python -m tests.mutants

bench: setup
	$(BIN)/python -m benchmarks.run

# Ten years of 1,300,000 persons, ingested month by month, then whole-population extracts: about 1.5 hours on 2 cores, not in CI.
bench-scale: setup
	$(BIN)/python -m benchmarks.scale
