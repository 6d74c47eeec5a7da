# One-command actions. `make test` is what CI runs (.ci/run) and what people run.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install format lint typecheck unit integration test services

install:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"

format:
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

lint:
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest tests/unit -q

integration:
	$(BIN)/pytest tests/integration -q

# Lint, types, then every test (integration tests need the services: `make services`).
test: lint typecheck
	$(BIN)/pytest -q

# Enable what the integration tests need on this machine's RabbitMQ and PostgreSQL.
services:
	bash scripts/services.sh
