# The two commands: `make run` starts the whole stack, `make test` lints and runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH ?= torch==2.13.0

.PHONY: install run test lint bench screenshots constraints clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[worker,embedded,notebook,plot,dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/ntkdyn run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -p no:cacheprovider

screenshots: install  # the pages as PNG, taken by the page tests
	NTKDYN_SCREENSHOTS=docs/screenshots $(BIN)/pytest -p no:cacheprovider tests/test_pages.py

constraints: install  # the images' pins (deploy/constraints.txt), from this environment
	$(BIN)/python -m tests.test_deploy > deploy/constraints.txt

bench: install
	$(BIN)/python bench/ntk.py
	$(BIN)/python bench/kernel.py
	$(BIN)/python bench/spectrum.py
	$(BIN)/python bench/empirical.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/ode.py
	$(BIN)/python bench/landscape.py
	$(BIN)/python bench/convex.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/heartbeat.py
	$(BIN)/python bench/user_reads.py
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) .ntkdyn
