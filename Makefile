# b00t-graph: `make demo` installs and runs the main job; `make test` runs every test;
# `make mutate` mutation-tests the pure core and writes benchmarks/MUTATION.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make demo` needs only the package; tests, lint and benchmarks need the extras too
BASE_STAMP := $(VENV)/.installed-base
MUTATE_STAMP := $(VENV)/.installed-mutate

.PHONY: install demo test lint bench mutate clean

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

$(MUTATE_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench,mutate]'
	touch $(MUTATE_STAMP)

# A fresh run every time (mutmut's cache would keep verdicts from older tests); the tests it runs and
# the modules it mutates are set in [tool.mutmut] of pyproject.toml.
mutate: $(MUTATE_STAMP)
	rm -rf mutants
	start=$$(date +%s); $(VENV)/bin/mutmut run --max-children 2 && $(PY) benchmarks/mutation_report.py --complete && \
	  echo "$$(( $$(date +%s) - start )) s" > benchmarks/results/mutation_runtime.txt
	$(PY) benchmarks/mutation_report.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache mutants
