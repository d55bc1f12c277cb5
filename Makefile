# The everyday jobs, each one command; CI uses the same ones.
# Each target creates (or reuses) the virtual environment in .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint audit format bench clean tools

$(STAMP): pyproject.toml tools/web_assets.json
	$(PYTHON) tools/web_assets.py  # scripts from npm the pages serve and the tests inject
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## set up, migrate and serve on http://127.0.0.1:8000
	$(BIN)/shanakht serve

demo: $(STAMP)  ## Shanakht and two sample e-services, three journeys walked, left running
	$(BIN)/shanakht demo

# Independent judges the tests call: zbarimg decodes our QR images (Debian's zbar-tools),
# pdftoppm draws PDFs, and Debian's Chromium is the browser Playwright drives.
tools:
	@{ command -v zbarimg && command -v pdftoppm && command -v chromium; } >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && apt-get install -y -qq zbar-tools poppler-utils chromium >/dev/null; } \
	  || { echo "the tests need zbarimg, pdftoppm and chromium: apt-get install zbar-tools poppler-utils chromium" >&2; exit 1; }

test: $(STAMP) tools  ## set up and run the whole test suite
	$(BIN)/pytest

lint: $(STAMP)  ## ruff lint, format check, strict type checks and bandit on the packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r api identity locker signing audit examples

audit: $(STAMP)  ## known vulnerabilities in the installed dependencies (needs the advisory databases)
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## benchmarks: print tables of throughput, latency and memory
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] \
	  && apt-get install -y -qq wrk >/dev/null; } || echo "no wrk: the OCSP bench will say so" >&2
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
