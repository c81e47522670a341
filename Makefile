# ecodemo: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKDIR ?= demo-output

.PHONY: demo test lint bench clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[all]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core  ## run the whole pipeline on the bundled real data (embedded PostgreSQL)
	$(BIN)/ecodemo demo --workdir $(WORKDIR)

test: $(VENV)/.all lint  ## install everything and run the whole suite (real PostgreSQL, Airflow...)
	$(BIN)/python -m pytest

lint: $(VENV)/.all  ## ruff and mypy
	$(BIN)/ruff check src tests dags benchmarks
	$(BIN)/mypy

bench: $(VENV)/.all  ## print the benchmark figures
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:  ## remove the virtualenv and generated outputs
	rm -rf $(VENV) $(WORKDIR) .pytest_cache .mypy_cache .ruff_cache
