# Two commands matter (see README): `make demo` and `make test`.
# Both create .venv and install the project into it first, so they work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint typecheck unit integration bench docs

# the compiled query kernel is built in place by the editable install: rebuild when it changes
$(BIN)/.installed: pyproject.toml setup.py core/ephemeris/_query_kernel.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/ssassoc demo

lint: setup
	$(BIN)/ruff check .

# mypy cannot follow setuptools' editable import hook, so give it the
# `ssassoc.core` / `ssassoc.worker` layout as a tree of symlinks.
typecheck: setup
	mkdir -p .mypy_src/ssassoc
	ln -sfn ../../core .mypy_src/ssassoc/core
	ln -sfn ../../worker .mypy_src/ssassoc/worker
	$(BIN)/mypy -p ssassoc.core -p ssassoc.worker

unit: setup
	$(BIN)/python -m pytest -m "not integration and not real_kafka" $(PYTEST_ARGS)

integration: setup
	$(BIN)/python -m pytest -m "integration and not real_kafka" $(PYTEST_ARGS)

# The whole suite CI runs. Tests marked real_kafka need Apache Kafka and are
# deselected here (printed by pytest as deselected), see README "Tests".
test: lint typecheck
	$(BIN)/python -m pytest -m "not real_kafka" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/run_all.py

# Regenerate the configuration reference (a test checks it is current).
docs: setup
	$(BIN)/python -m ssassoc.worker.manual > docs/configuration.md
