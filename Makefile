# Two commands do all the set-up: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NODE_PROGRAMS := tests/programs

.PHONY: run test slow lint bench screenshots clean

run: $(VENV)/.installed  ## install (first time) and start ollama-tui; pass flags with ARGS="--print"
	$(BIN)/ollama-tui $(ARGS)

test: lint $(NODE_PROGRAMS)/node_modules/.installed  ## linters, type check, then the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

slow: $(VENV)/.installed-test  ## long soak, fuzz and load runs, kept out of `make test`
	$(BIN)/python -m pytest -q -m slow -o addopts="" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test  ## ruff and mypy, as configured in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/mypy

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

# The OpenTelemetry JS packages the Node test's child needs, at the versions package-lock.json pins; with no npm
# on PATH nothing is installed (and nothing stamped, so a later run with npm installs them).
$(NODE_PROGRAMS)/node_modules/.installed: $(NODE_PROGRAMS)/package.json $(NODE_PROGRAMS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci --prefix $(NODE_PROGRAMS) --no-audit --no-fund --ignore-scripts"; \
		npm ci --prefix $(NODE_PROGRAMS) --no-audit --no-fund --ignore-scripts && touch $@; \
	else \
		echo "npm is not on PATH: the Node test's OpenTelemetry packages are not installed"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info $(NODE_PROGRAMS)/node_modules

screenshots: $(VENV)/.installed-test  ## regenerate screenshots/*.svg from real app states
	$(BIN)/python screenshots/make_screenshots.py

bench: $(VENV)/.installed-test  ## the benchmark suite (takes a few minutes; ARGS=--quick for a smoke run)
	$(BIN)/python bench/run.py $(ARGS)
