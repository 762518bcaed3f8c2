# The README's two commands: `make demo` and `make test`.
# MediaPipe 0.10.21 (the last release that bundles Face Mesh) has wheels for CPython 3.10-3.12
# only: use the first of those found, or the interpreter named by `make test PYTHON=...`.
PYTHON ?= $(firstword $(foreach v,3.12 3.11 3.10,$(shell python$(v) -c 'import sys; print(sys.executable)' 2>/dev/null)))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "eyeedit needs Python 3.10, 3.11 or 3.12 (MediaPipe 0.10.21 has wheels for no other); none found: install one or pass PYTHON=/path/to/python3.x" >&2; \
	  exit 1; fi
	$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "eyeedit needs Python 3.10-3.12 (MediaPipe 0.10.21 wheels); $(PYTHON) is %d.%d" % v)'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-cache-dir --upgrade pip
	# torch first, at the version the project is tested with (falls back to the newest).
	$(BIN)/pip install --quiet --no-cache-dir "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install --quiet --no-cache-dir torch torchvision
	$(BIN)/pip install --quiet --no-cache-dir -e ".[test,tensorboard,web]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eyeedit samples demo/samples
	$(BIN)/eyeedit demo --out demo

test: $(STAMP)
	$(BIN)/python -m pytest -q
