# The two commands a newcomer needs are `make run` and `make test`; both create the
# virtual environment and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run worker test lint fmt spec migrate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# The API and one job worker beside it; Ctrl-C stops both.
run: $(STAMP)
	$(BIN)/pathcredit serve

# One more job worker (another terminal, or another machine with the same DATABASE_URL).
worker: $(STAMP)
	$(BIN)/pathcredit worker

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy api attribution

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

spec: $(STAMP)
	$(BIN)/pathcredit spec --output openapi.yaml

migrate: $(STAMP)
	$(BIN)/pathcredit migrate
