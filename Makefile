# Every target creates its own virtual environment on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export LMDP_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(LMDP_HOME)/dagster

.PHONY: setup demo test test-fast ui validate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/lmdp demo

test: setup
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
