# One-command actions. `make test` is what CI runs (.ci/run) and what people run.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install constraints format lint typecheck unit integration test services

# Exactly the versions in constraints.txt (the image and CI install the same).
install:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --constraint constraints.txt pip
	$(BIN)/pip install -q --constraint constraints.txt -e ".[dev]"
	$(BIN)/pip check

# Re-pin: resolve pyproject.toml's ranges in a fresh virtualenv and write what it installed.
# Run the tests with the result (`make install test`) before committing it.
LOCK_VENV := .venv-lock
constraints:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q -e ".[dev]"
	{ sed -n '/^#/p' constraints.txt; \
	  $(LOCK_VENV)/bin/pip list --format=freeze --exclude-editable | grep -v '^setuptools=='; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

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
