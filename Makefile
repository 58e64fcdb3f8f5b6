# Quickstart targets. Each one creates the virtualenv (.venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test lint bench serve soak reliability

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench]'

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict toolkit

bench: install
	$(BIN)/python -m benchmarks

serve: install
	$(BIN)/uvicorn apps.shop.main:app --port 8000

soak: install
	$(BIN)/python -m benchmarks.soak

# Runs the adversarial suite and the soak, then regenerates README's Reliability section.
reliability: install
	REQUIRE_REDIS=1 $(BIN)/python -m pytest -q tests/adversarial --junitxml=benchmarks/results/adversarial.xml
	$(BIN)/python -m benchmarks.soak
	$(BIN)/python tests/adversarial/summary.py benchmarks/results/adversarial.xml --readme README.md
