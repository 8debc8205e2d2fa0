# Makegood: `make run` for the embedded default, `make test` for the whole suite
# (`make test-fast` for its fast tier alone).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
LOWEST := .venv-lowest
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
# One lock for every platform and Python >= 3.11: the project, its test extra, the dev group.
COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--extra test --group dev pyproject.toml -o $(LOCK)

.PHONY: setup run worker test test-fast lint lock lock-upgrade test-lowest bench histories clean

setup: $(STAMP)

# A fresh venv with exactly the locked versions (hash-checked), then the project itself,
# editable, built offline by the locked setuptools. `pip check` catches a dependency added to
# pyproject.toml without `make lock`.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv --clear $(VENV)
	$(PIP) install --require-hashes -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	@$(PIP) check || { echo "pyproject.toml needs what $(LOCK) lacks: run make lock"; exit 1; }
	@touch $(STAMP)

# uv at the locked version, even before `make setup` can succeed (a dependency just added).
$(BIN)/uv:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	v=$$(sed -n 's/^uv==\([^ ;]*\).*/\1/p' $(LOCK) 2>/dev/null); $(PIP) install "uv$${v:+==$$v}"

# Re-resolve after editing the dependencies in pyproject.toml; pins that still fit are kept.
lock: $(BIN)/uv
	$(COMPILE)

# Every pin to the newest version pyproject.toml allows.
lock-upgrade: $(BIN)/uv
	$(COMPILE) --upgrade

# Temporal dev server (SQLite under data/, web UI on :8233) + worker, in the foreground.
run: setup
	$(BIN)/makegood dev

# The worker alone, against TEMPORAL_ADDRESS.
worker: setup
	$(BIN)/makegood worker

# Two tiers: the fast one first (workflow logic against in-memory providers, seconds), then
# everything else against the real providers and servers. tests/fast/ runs once, in the first.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest tests/fast
	$(BIN)/python -m pytest --ignore=tests/fast

# The fast tier alone: every stage's decisions on the time-skipping server, in seconds.
test-fast: setup
	$(BIN)/python -m pytest tests/fast

# The suite against the lowest version of each direct dependency that pyproject.toml allows
# (the rest at their newest): proves the declared minimums. Needs PyPI; about 4 minutes.
test-lowest: $(BIN)/uv
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(LOWEST)
	$(BIN)/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct \
		-e '.[test]'
	$(BIN)/uv pip freeze --python $(LOWEST)/bin/python
	$(LOWEST)/bin/ruff check .
	$(LOWEST)/bin/ruff format --check .
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider

# Whole cases against a bare workflow, replay against the bare SDK Replayer (figures, ratios,
# JSON), and how soon a killed worker's cases resume.
bench: setup
	$(BIN)/python -m bench.cases
	$(BIN)/python -m bench.arrivals
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.kill
	$(BIN)/python -m bench.answers

# Re-record the committed scenario histories (tests/histories/) after a deliberate,
# versioned workflow change; see "Changing workflow code" in the README.
histories: setup
	rm -f tests/histories/*.json
	MAKEGOOD_RECORD_HISTORIES=1 $(BIN)/python -m pytest -q tests/test_scenarios.py \
		tests/test_history.py tests/test_callbacks.py tests/test_sla.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(LOWEST) data .pytest_cache .ruff_cache
