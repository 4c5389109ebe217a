# Two commands are the whole set-up: `make demo` and `make test` create .venv when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test test-slow bench lint defaults clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first (a local wheel where one is provided), so pip never resolves a CUDA build.
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/pip install -q "torch>=2.2"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/icctrl demo --json icctrl-out/demo.json

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

bench: $(STAMP)
	$(BIN)/icctrl bench --json icctrl-out/bench.json

lint: $(STAMP)
	$(BIN)/ruff check .

defaults: $(STAMP)
	$(BIN)/python examples/train_defaults.py

clean:
	rm -rf icctrl-out .pytest_cache
