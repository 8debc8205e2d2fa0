# Makegood: `make run` for the embedded default, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run worker test lint bench histories clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# Temporal dev server (SQLite under data/, web UI on :8233) + worker, in the foreground.
run: setup
	$(BIN)/makegood dev

# The worker alone, against TEMPORAL_ADDRESS.
worker: setup
	$(BIN)/makegood worker

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Throughput and latency of whole cases against a bare-Temporal baseline, in one run.
bench: setup
	$(BIN)/python -m bench.cases
	$(BIN)/python -m bench.replay

# Re-record the committed scenario histories (tests/histories/) after a deliberate,
# versioned workflow change; see "Changing workflow code" in the README.
histories: setup
	rm -f tests/histories/*.json
	MAKEGOOD_RECORD_HISTORIES=1 $(BIN)/python -m pytest -q tests/test_scenarios.py \
		tests/test_history.py tests/test_callbacks.py tests/test_sla.py

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
