# ecodemo: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKDIR ?= demo-output
# PostgreSQL (embedded) warns about a fallback when there is none (root, CI).
export XDG_RUNTIME_DIR ?= /tmp/runtime-$(shell id -u)

# Debian packages the suite needs, one per line: adding one is adding a line. npm (for the
# report's accessibility checker) is added only when no npm is on PATH, so a Node.js installed
# from elsewhere (NodeSource) is left alone.
DEB_PACKAGES := \
	python3-venv \
	libgomp1 \
	mosquitto \
	chromium \
	chromium-driver \
	docker-compose

# The store, migration, ingest, retention, dashboard-SQL and evaluate tests, run again on
# TimescaleDB by `make test-timescaledb` (the ignored ones start embedded servers of their own).
TIMESCALEDB_TESTS := tests/integration tests/reliability tests/deploy/test_db_roles.py \
	tests/sensors/test_files.py tests/sensors/test_quality.py \
	--ignore=tests/integration/test_cli_users.py --ignore=tests/reliability/test_db_outage.py \
	--ignore=tests/reliability/test_dependency_audit.py

.PHONY: demo test test-timescaledb deps lint bench clean help

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

deps:  ## install the missing Debian packages the suite needs (as root, else with sudo)
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -qx 'install ok installed' || echo $$p; \
	done; \
	command -v npm >/dev/null 2>&1 || echo npm); \
	[ -z "$$missing" ] && exit 0; \
	missing=$$(echo $$missing); \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make test needs the Debian packages $$missing (no apt-get here: install their equivalents)" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "make test needs the Debian packages $$missing: run 'make deps' as root (no sudo here)" >&2; exit 1; fi; \
	echo "installing Debian packages: $$missing"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

# axe-core (MPL-2.0), the report's accessibility checker, from npm at test time (not vendored);
# without npm (Debian package npm, or Node.js's own) the accessibility test is skipped
node_modules/axe-core/axe.min.js:
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: the report's accessibility test will be skipped" >&2; exit 0; }; \
	npm install --no-save --no-package-lock --no-audit --no-fund axe-core@4

test: deps $(VENV)/.all lint node_modules/axe-core/axe.min.js  ## install everything and run the whole suite (real PostgreSQL, Airflow...)
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)
	$(BIN)/python -m pytest

test-timescaledb: deps $(VENV)/.all  ## the database tests again on TimescaleDB (needs ECODEMO_TEST_DATABASE_URL)
	@[ -n "$$ECODEMO_TEST_DATABASE_URL" ] || { echo "set ECODEMO_TEST_DATABASE_URL to a TimescaleDB server's maintenance database (.ci/timescaledb starts one)" >&2; exit 2; }
	@mkdir -p -m 700 $(XDG_RUNTIME_DIR)
	$(BIN)/python -m pytest $(TIMESCALEDB_TESTS)

lint: $(VENV)/.all  ## ruff and mypy
	$(BIN)/ruff check src tests dags benchmarks
	$(BIN)/mypy

bench: $(VENV)/.all  ## print the benchmark figures
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:  ## remove the virtualenv and generated outputs
	rm -rf $(VENV) $(WORKDIR) .pytest_cache .mypy_cache .ruff_cache
