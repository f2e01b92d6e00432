# Set-up is idempotent: the virtual environment is (re)built only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup gnuradio run lint test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0 -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## GNU Radio beside isacblocks (isacblocks.gnuradio, GRC blocks): a venv on Debian's python3, which has
## GNU Radio 3.10 (`apt-get install gnuradio`), seeing its packages; numpy stays below 2 for GNU Radio's
## compiled modules (Debian's numpy, scipy and matplotlib are used as they are; --no-compile: Python compiles
## what it imports, ~15 s less).  `isac grc install` writes the GRC blocks (ISAC_KERNELS=native: no restart
## with the pinned kernel set, whose NPY_DISABLE_CPU_FEATURES makes numpy 1.24 warn).  Rebuilt only when
## pyproject.toml changes.
GR_PYTHON ?= /usr/bin/python3
GR_VENV   ?= .venv-gr
GR_STAMP  := $(GR_VENV)/.installed

$(GR_STAMP): pyproject.toml
	@$(GR_PYTHON) -c "from gnuradio import gr" || { echo "$(GR_PYTHON) cannot import gnuradio: apt-get install gnuradio"; exit 1; }
	$(GR_PYTHON) -m venv --system-site-packages $(GR_VENV)
	$(GR_VENV)/bin/python -m pip install --quiet --no-compile torch==2.13.0 'numpy<2' -e .
	ISAC_KERNELS=native $(GR_VENV)/bin/isac grc install
	touch $(GR_STAMP)

gnuradio: $(GR_STAMP)

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
	rm -rf $(VENV) $(GR_VENV) build *.egg-info
