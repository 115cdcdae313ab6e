# The two quick-start commands, both idempotent:
#   make demo   creates .venv if missing, installs oabot, runs `oabot serve --demo`
#   make test   installs the dev extra and runs the whole test suite
#   make lint   ruff, mypy --strict, import-linter contracts, complexity (CI runs it before the tests)
# pip runs only when pyproject.toml is newer than the last install (stamp files in .venv/).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint install dev browser

demo: $(INSTALLED)
	$(BIN)/oabot serve --demo

test: $(INSTALLED_DEV) browser
	$(BIN)/pytest -q

# The browser tests drive Debian's Chromium headless, with the Noto CJK fonts so Chinese renders in
# the screenshots; install both when we can (root + apt).
BROWSER_PKGS := chromium fonts-noto-cjk
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi 'noto.*cjk'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(BROWSER_PKGS) for the browser tests (apt-get)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PKGS) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PKGS) >/dev/null; }; \
	  else echo "chromium or fonts-noto-cjk missing: browser tests will be skipped or render boxes (apt-get install -y $(BROWSER_PKGS))"; fi; \
	fi

# The shape is kept by these: style, types (strict, every package), the layer contracts in
# pyproject.toml, and no function with cyclomatic complexity above 20.
PACKAGES := approvals bot checkins deadlines handlers notices notifications org reports services storage

lint: $(INSTALLED_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict $(PACKAGES)
	$(BIN)/lint-imports --no-cache
	@out=$$($(BIN)/radon cc -n D $(PACKAGES)); if [ -n "$$out" ]; then echo "cyclomatic complexity above 20:"; echo "$$out"; exit 1; fi

install: $(INSTALLED)

dev: $(INSTALLED_DEV)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The dev extra includes the package itself, so it satisfies `make demo` too.
$(INSTALLED_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(INSTALLED)
