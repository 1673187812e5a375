# One task runner for people and CI. Everything installs into ./.venv from this repo's own files.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov (tests/infra/test_checkov.py) pins packages that conflict with constraints.txt, so it
# gets its own venv from its own fully pinned list.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: up test install lint types unit clean

# Set-up command 1: install, then run everything on the embedded defaults.
up: $(STAMP)
	$(BIN)/meterline up --demo-traffic

# Set-up command 2: install, then lint, type-check and run the whole test suite (CI runs this).
test: install lint types unit

install: $(STAMP) $(TOOLS_STAMP)

# The native OTLP helpers (Cython) are compiled by the install, so a changed .pyx reinstalls.
NATIVE_SOURCES := $(wildcard setup.py collector/*.pyx collector/*.pxd gateway/telemetry/*.pyx gateway/telemetry/*.pxd)

$(STAMP): pyproject.toml constraints.txt $(NATIVE_SOURCES)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(TOOLS_STAMP): infra/tools-requirements.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r infra/tools-requirements.txt
	touch $(TOOLS_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
