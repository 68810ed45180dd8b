# Two commands do everything on a fresh machine:
#   make run   — set up, initialise SQLite + keys, load the demo, serve on http://127.0.0.1:8000
#   make test  — set up with dev extras, lint, run the suite on SQLite (and PostgreSQL when
#                EDC_TEST_DATABASE_URL is set)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist workers per database's suite; the modules are dealt out whole (--dist loadfile),
# so a module's fixtures are built once
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: run test lint bench clean system-tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/htmx.org/dist/htmx.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed node_modules/htmx.org/dist/htmx.min.js
	$(BIN)/edc init
	$(BIN)/edc demo
	$(BIN)/edc serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

system-tools:
	scripts/system-tools.sh

# With EDC_TEST_DATABASE_URL the PostgreSQL run goes side by side with the SQLite one, each in
# TEST_WORKERS processes (on 2 cores the four fill the waits of one another's servers, browsers
# and subprocesses: 13 minutes for both, against 20 with one process each); the PostgreSQL
# output is kept in var/test-postgresql.log and printed when both are done.
test: system-tools $(VENV)/.installed node_modules/htmx.org/dist/htmx.min.js lint
	@mkdir -p var
	@if [ -n "$$EDC_TEST_DATABASE_URL" ]; then \
		$(PYTEST) > var/test-postgresql.log 2>&1 & pg=$$!; \
		env -u EDC_TEST_DATABASE_URL $(PYTEST); lite=$$?; \
		wait $$pg; rc=$$?; \
		echo "=== the same suite on PostgreSQL (run beside it) ==="; \
		cat var/test-postgresql.log; \
		[ $$lite -eq 0 ] && [ $$rc -eq 0 ]; \
	else \
		env -u EDC_TEST_DATABASE_URL $(PYTEST) && \
		echo "EDC_TEST_DATABASE_URL not set: PostgreSQL run skipped"; \
	fi

# The ledger benchmark; the others (deid, entry, extract, audit export) are listed with their
# commands in docs/benchmarks.md.
bench: $(VENV)/.installed
	$(BIN)/python bench/ledger_bench.py

clean:
	rm -rf $(VENV) node_modules var
