# Set-up is idempotent: the virtual environment is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run lint test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0 -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## The main job on built-in defaults.
run: $(STAMP)
	$(VENV)/bin/isac reproduce

## Benchmarks (receivers, training step, chain, ZeroMQ, memory): out/bench/bench.{md,json}.
bench: $(STAMP)
	$(VENV)/bin/isac bench

## The linter (pyflakes, pycodestyle, import order, bugbear, pyupgrade; rules in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## The test suite (CI runs this after `make lint`).
test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
