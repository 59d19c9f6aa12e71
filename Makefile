# b00t-graph: `make demo` installs and runs the main job; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make demo` needs only the package; tests, lint and benchmarks need the extras too
BASE_STAMP := $(VENV)/.installed-base

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(BASE_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $(BASE_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP) $(BASE_STAMP)

demo: $(BASE_STAMP)
	$(VENV)/bin/b00t-graph up demo.stack

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check b00t_graph tests benchmarks
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
