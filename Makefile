# Entry points for a fresh machine: `make demo` (the main job on built-in synthetic data), `make test` (the fast
# suite, the developer's loop) and `make test-all` (every test, the slow accuracy checks included; CI runs it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_ALBUMENTATIONS_UPDATE := 1
# torch's CUDA wheels are several GB; caching a second copy of them can fill a small disk.
export PIP_NO_CACHE_DIR := 1
DEMO_DATA ?= data-demo
DEMO_RUN ?= runs/demo

.PHONY: install browser demo test test-all lint docs docs-gen clean

$(BIN)/simrec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[dev,serve,docs]"
	touch $(BIN)/simrec

install: $(BIN)/simrec

demo: install
	$(BIN)/simrec prepare-data --dataset synthetic --data-root $(DEMO_DATA)
	$(BIN)/simrec train --preset synthetic-tiny dataset.data_root=$(DEMO_DATA) train.output_dir=$(DEMO_RUN)
	$(BIN)/simrec eval $(DEMO_RUN)/best.pth --data-root $(DEMO_DATA)
	$(BIN)/simrec predict $(DEMO_DATA)/images/synthetic/demo.jpg "the big red circle" --checkpoint $(DEMO_RUN)/best.pth --output-dir $(DEMO_RUN)/predict

# Headless Chromium for the page tests (eval reports, the served page); they are skipped where it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
	  echo "Chromium is not installed and could not be: the browser tests will be skipped."

# Tests marked `slow` (a model trained for minutes, then held to an accuracy) run only in test-all, and there the
# property tests (Hypothesis) try 200 examples each instead of make test's 40 (tests/fuzzing.py). Both run in
# TEST_WORKERS pytest-xdist processes: the suite keeps each process to one thread (tests/conftest.py), so two
# workers keep both cores busy. `loadfile` keeps a file's tests on one worker (its module fixtures are built once), and
# the files of the costly session fixtures go first (tests/conftest.py). TEST_WORKERS=0: one process, no xdist.
TEST_WORKERS ?= 2
# A worker that dies ends the run at once (--max-worker-restart=0) instead of leaving it waiting for its tests.
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart=0

test: install browser
	$(PYTEST) -m "not slow"

test-all: install browser
	SIMREC_HYPOTHESIS_PROFILE=thorough $(PYTEST)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (mkdocs.yml, docs/): built strictly into site/; `$(BIN)/mkdocs serve` previews it.
docs: install
	$(BIN)/mkdocs build --strict

# Rewrite the generated reference pages (CLI, settings, HTTP API) from the code; the tests fail until this is run.
docs-gen: install
	$(BIN)/python -m tools.docs

clean:
	rm -rf $(DEMO_DATA) $(DEMO_RUN) build dist site *.egg-info
