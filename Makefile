# The two commands: `make run` (the platform) and `make test` (the suite).
# Each sets up everything it needs; re-running is quick when nothing changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every package `make install` installs, pinned with its hashes; the image's subset.
DEV_LOCK := requirements/dev.lock
DEPLOY_LOCK := requirements/deploy.lock
UV_VERSION := 0.13.9
DATA_DIR := $(or $(CRYPTO_DATA_DIR),.crypto_platform)
VENDOR_DIR := $(or $(CRYPTO_VENDOR_DIR),.vendor)
CASSANDRA_STAMP := $(VENDOR_DIR)/apache-cassandra-2.1.0/lib/apache-cassandra-2.1.0.jar
CHART_VENDOR := crypto_platform/api/vendor
CHART_STAMP := $(CHART_VENDOR)/node_modules/.package-lock.json
# `make test` runs the suite in this many pytest-xdist workers, each with a stack of its own
# (a module stays on one worker). Its servers mostly wait, so two overlap well on 2 cores.
TEST_WORKERS ?= 2

export PYSPARK_PYTHON := $(abspath $(BIN)/python)

.PHONY: run test test-deps lint format install lock system-deps stack-up stack-down stack-status clean

# dagster dev (UI on :3000, DAGSTER_HOME=<data dir>/dagster) and the API (:8000) together;
# one Ctrl-C ends the streaming runs cleanly and stops both.
run: install stack-up
	$(BIN)/crypto-platform dev

test: install test-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The dashboard's browser test drives Debian's chromium (installed with apt when missing).
test-deps:
	@test -x /usr/bin/chromium || { echo "installing chromium with apt"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

install: system-deps $(STAMP) $(CASSANDRA_STAMP) $(CHART_STAMP)

# Java runs Cassandra; npm fetches it. Installed with apt only when missing.
system-deps:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The dependencies exactly as the lock pins them (hashes checked), then the project itself
# (editable, without dependencies). `pip check` fails when pyproject.toml's pins and the
# lock disagree: run `make lock`.
$(STAMP): pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(BIN)/pip install -q --progress-bar off --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --progress-bar off --no-deps -e .
	@$(BIN)/pip check || { echo "if pyproject.toml changed, run \`make lock\`"; exit 1; }
	touch $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The lock files, from pyproject.toml's pins and extras. After changing a dependency in
# pyproject.toml, run `make lock` and commit requirements/: `make install`, CI and the
# image install only what the locks hold. Versions already locked are kept unless
# pyproject.toml moves them; `make lock LOCK_FLAGS=--upgrade` refreshes the indirect ones.
# The image's lock is constrained by the developers' one, so both pin the same versions.
LOCK := $(BIN)/uv pip compile -q pyproject.toml --generate-hashes --python-version 3.11 \
	--python-platform linux --no-strip-extras --custom-compile-command 'make lock' $(LOCK_FLAGS)
lock: | $(BIN)/python
	$(BIN)/pip install -q --progress-bar off uv==$(UV_VERSION)
	@mkdir -p requirements
	$(LOCK) --extra local --extra dev -o $(DEV_LOCK)
	$(LOCK) --extra deploy -c $(DEV_LOCK) -o $(DEPLOY_LOCK)

$(CASSANDRA_STAMP): | $(STAMP)
	$(BIN)/crypto-platform stack install

# The dashboard's chart library, pinned by its package-lock.json and served by the API.
$(CHART_STAMP): $(CHART_VENDOR)/package-lock.json | system-deps
	npm ci --prefix $(CHART_VENDOR) --no-audit --no-fund
	touch $@

stack-up: install
	$(BIN)/crypto-platform stack up

stack-down:
	$(BIN)/crypto-platform stack down

stack-status:
	$(BIN)/crypto-platform stack status

clean: stack-down
	rm -rf "$(DATA_DIR)"
