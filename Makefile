# Every target creates its own virtual environment on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export LMDP_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(LMDP_HOME)/dagster
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser postgres demo test test-fast ui validate bench bench-scale clean

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

# The production-configuration test runs a throw-away PostgreSQL cluster (Debian's postgresql package).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "installing Debian's postgresql for the PostgreSQL deployment test"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

test: setup browser postgres
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

validate: setup
	$(BIN)/dagster definitions validate -w workspace.yaml

clean:
	rm -rf $(VENV) var .pytest_cache

bench: setup
	$(BIN)/python -m benchmarks.run

# Ten years of 1,300,000 persons, ingested month by month, then whole-population extracts: hours on 2 cores, not in CI.
bench-scale: setup
	$(BIN)/python -m benchmarks.scale
