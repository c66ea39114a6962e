# r3lab: `make main` (set up + the notebook series) and `make test` (set up + the test suite).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.r3lab-installed

# r3-tiny is overhead-bound: one OpenMP thread per process avoids spin-waiting (see r3lab.env.configure_threads).
export OMP_NUM_THREADS ?= 1

.PHONY: setup main test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name r3lab --display-name "r3lab (Python 3)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

main: $(STAMP)
	$(BIN)/r3lab notebooks run --profile default --out runs/main

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) runs .pytest_cache
