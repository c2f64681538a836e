# The front door: `make run` and `make test` set up everything on a fresh machine, then do their job.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
PYX    := $(wildcard ext/*.pyx ext/*.pxd)
BUILT  := $(VENV)/.built

# The main job: the TUI with a Beasty Bar PPO run (balance profile) launched, so a newcomer sees it move
# at once. Without a terminal (CI, a pipe) the same run goes headless with plain output.
RUN_ARGS ?= --launch-default

.PHONY: run test test-fast build lint bench clean

run: $(BUILT)
	$(VENV)/bin/trainctl $(RUN_ARGS)

test: $(BUILT)
	$(PY) -m pytest

# The edit loop: `make test` without the tests that train or start a process (`slow`) or repeat a check at
# a larger size (`heavy`), on both cores. Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: each
# xdist worker otherwise recompiles our modules and re-rewrites every test module's asserts on every run
# (~5 s of CPU per worker; __pycache__ is git-ignored).
test-fast: $(BUILT)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -m "not slow and not heavy" -n 2

build: $(BUILT)

# torch goes in first and pinned: the local CPU wheel, never an unpinned multi-GB CUDA build. scipy goes in
# with the build tools: ext/ppo_step cimports its BLAS, and the editable install compiles ext/.
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install setuptools wheel "Cython>=3.0" "scipy>=1.11"
	$(PIP) install --no-build-isolation -e '.[dev,bench,ray]'
	touch $@

$(BUILT): $(STAMP) $(PYX)
	$(PY) setup.py -q build_ext --inplace
	touch $@

lint: $(BUILT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy ext envs engine cli tui
	$(VENV)/bin/lint-imports

bench: $(BUILT)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build ext/*.c ext/*.so $(BUILT)
