# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the build pip can take from this machine's local wheels.
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install --quiet torch torchvision
	$(BIN)/pip install --quiet -e ".[test,web]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eyeedit samples demo/samples
	$(BIN)/eyeedit demo --out demo

test: $(STAMP)
	$(BIN)/python -m pytest -q
