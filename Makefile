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

.PHONY: setup browser age old-duckdb demo test test-fast ui validate bench clean

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

test: setup browser age old-duckdb
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

validate: setup
	$(BIN)/dagster definitions validate -w workspace.yaml

clean:
	rm -rf $(VENV) $(OLD_DUCKDB_VENV) var .pytest_cache

bench: setup
	$(BIN)/python -m benchmarks.run
