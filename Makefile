# After: everything a newcomer needs on a fresh Debian machine (Python 3.11, Node.js, npm).
#   make demo    run After end to end on loopback: CouchDB-protocol server, worker, a task that runs
#   make serve   keep a server and the worker manobi on 127.0.0.1:5984 for the README's curl examples
#   make check   run every test (unit, contract, integration, system); .ci/run calls it
#   make bench   the benchmarks (not part of check)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Packaging, systemd and system-test targets live in mk/*.mk (deb, install, system-deps).
.DEFAULT_GOAL := check
-include mk/*.mk

.PHONY: all demo serve serve-deps check test lint typecheck unit contract integration system bench clean
all: check

$(STAMP): requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || mk/apt-install python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

venv: $(STAMP)
server: node_modules/.installed

demo: $(STAMP) node_modules/.installed
	@command -v curl >/dev/null || mk/apt-install curl
	$(BIN)/python -m tests.demo

# A server and the worker manobi on 127.0.0.1:5984 until Ctrl-C, for the README's curl examples (tests/serve.py).
# make serve SERVE="--fresh" (or --server pouchdb, --port, --worker, --dir): arguments of tests.serve
serve: $(STAMP) node_modules/.installed serve-deps
	$(BIN)/python -m tests.serve $(SERVE)

# curl and jq: the README's examples use them (make serve, and tests/integration/test_readme.py in make check)
serve-deps:
	@command -v curl >/dev/null && command -v jq >/dev/null || mk/apt-install curl jq

lint: $(STAMP)
	$(BIN)/ruff check after tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Contract, integration and system tests run on Apache CouchDB (../shared/couchdb) and on pouchdb-server;
# without ../shared the CouchDB runs are skipped and the summary says so. -rsxX lists skips and xfails.
check: $(STAMP) node_modules/.installed serve-deps
	$(BIN)/ruff check after tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -rsxX tests

# make bench BENCH="--quick" (or --only NAME, --server couchdb|pouchdb): arguments of bench.run
bench: $(STAMP) node_modules/.installed
	$(BIN)/python -m bench.run $(BENCH)

clean:
	rm -rf $(VENV) node_modules .demo .serve .pytest_cache .mypy_cache .ruff_cache
