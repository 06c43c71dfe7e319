# The everyday commands. Run `make help` for the list; every target uses the project's .venv.
VENV ?= .venv
BIN := $(VENV)/bin
TDB_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export TDB_TEST_DATABASE_URL

.PHONY: help venv test-fast test lint typecheck bench bench-http

help:
	@echo "make venv       create .venv and install tdb with its test tools"
	@echo "make test-fast  the unit tests: use cases on in-memory adapters (seconds)"
	@echo "make test       the full suite, PostgreSQL included, as CI runs it"
	@echo "make lint       ruff, ruff format --check and the import contracts"
	@echo "make typecheck  mypy over the code and the tests"
	@echo "make bench      tdb's app against a bare app, in process (steady figures, no wrk)"
	@echo "make bench-http tdb serve against a bare app over HTTP with wrk (needs wrk)"

venv:
	python3 -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'

test-fast:
	$(BIN)/pytest -q tests/unit

test:
	CI=true $(BIN)/pytest -q

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

bench:
	$(BIN)/python bench/asgi_bench.py 2>/dev/null

bench-http:
	$(BIN)/python bench/http_bench.py --duration 3
