# r3lab: `make main` (set up + the notebook series), `make test` (set up + the test suite) and `make docs`
# (the course's site from runs/main, offline, into site/).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.r3lab-installed
# Debian's Chromium drives the browser test (tests/course/test_lab_browser.py); Playwright never downloads one.
# `make main` needs no browser: plotly's PNGs are drawn by kaleido in it when it is there, by matplotlib otherwise.
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=

# r3-tiny is overhead-bound: one OpenMP thread per process avoids spin-waiting (see r3lab.env.configure_threads).
export OMP_NUM_THREADS ?= 1
ifneq ($(wildcard $(CHROMIUM)),)
export R3LAB_CHROMIUM := $(CHROMIUM)
endif
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

# A second environment for CI (`make test-py312`): Python 3.12 with the registry's newest torch and transformers
# (CUDA wheels: about two minutes to install), running the tests of the rooms below the course.
PY312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
VENV312 ?= .venv312
PINS312 ?= torch transformers  # newest; the floor: PY312=python3.10 PINS312="torch==2.11.0 transformers==5.20.2"
CORE_TESTS := tests/core tests/engine tests/model tests/train tests/explain

.PHONY: setup chromium main solutions check docs test lint routes venv312 test-py312 clean
RUN ?= runs/main
# RECORD=1 (the reference machine, at the end of a change): record the run into the repository (lesson times into
# r3lab/course/times.json, the solutions' expected outputs into expected.json) and rewrite every generated statement
RECORD_FLAG := $(if $(RECORD),--record,)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name r3lab --display-name "r3lab (Python 3)" >/dev/null
	touch $(STAMP)

# Installed only when missing; CI runs as root on Debian, elsewhere say what to do.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "[setup] $(CHROMIUM) is missing: apt-get install -y chromium (for the browser test)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  && [ -x "$(CHROMIUM)" ] \
	  || { echo "error: could not install Debian's chromium; the browser test needs it at $(CHROMIUM)." >&2; \
	       echo "       Install it by hand, or run: make test PYTEST_ARGS='-m \"not browser\"'" >&2; exit 1; }; \
	else \
	  echo "error: the browser test needs Chromium at $(CHROMIUM). Install it (Debian/Ubuntu: sudo apt-get install -y chromium)," >&2; \
	  echo "       or name another one: make test CHROMIUM=/path/to/chromium, or skip it: make test PYTEST_ARGS='-m \"not browser\"'" >&2; \
	  exit 1; \
	fi

setup: $(STAMP) chromium

# The series at default sizes; no browser, GPU or network needed once set up (plotly's PNGs: kaleido in a Chromium
# when one is found, else matplotlib; the runner says which).
main: $(STAMP)
	$(BIN)/r3lab notebooks run --profile default --out $(RUN) $(RECORD_FLAG)

# The answer key, executed at default sizes into $(RUN)/solutions/; the index of $(RUN) links each solution.
solutions: $(STAMP)
	$(BIN)/r3lab notebooks run --solutions --profile default --out $(RUN) $(RECORD_FLAG)

# The pre-class check: can this machine run the course, and how long each lesson takes here (about a minute).
check: $(STAMP)
	$(BIN)/r3lab notebooks check $(if $(RECORD),--record,)

# The lessons as `make main` executed them (RUN=runs/other for another run), docs/ and the API reference.
docs: $(STAMP)
	@test -d $(RUN) || echo "[docs] $(RUN) does not exist: the lesson pages will have no outputs (run make main first)"
	$(BIN)/r3lab notebooks site --run $(RUN) --out site

# -v: the CI log names every test (each notebook in smoke mode, the link check, the browser check)
test: lint
	$(BIN)/python -m pytest -v -p no:cacheprovider -n 2 --dist worksteal --durations=20 $(PYTEST_ARGS)

# The lint `make test` runs first (a few seconds): the formatter's check (notebooks excepted: their cells are generated
# or checked by tests/course, never reformatted), then ruff's rules ([tool.ruff.lint]: E, F, W, import order I and
# bugbear B) on the notebooks and research/ too.
lint: setup
	$(BIN)/ruff format --check r3lab tests benchmarks tools research
	$(BIN)/ruff check r3lab tests benchmarks tools notebooks research

# Every route a class takes (Colab, a wheel outside the clone, Binder), each rebuilt in a fresh environment from the
# repository alone, every lesson in smoke mode through plain papermill (routes/all.sh; logs and times: runs/routes/).
# The Colab route clones the last commit. CI runs the wheel route with two lessons (tests/course/test_routes.py).
routes: $(STAMP)
	bash routes/all.sh runs/routes
	$(if $(RECORD),$(BIN)/python -m r3lab.course.syllabus --routes runs/routes/routes.json,)

# venv312: the environment and its torch and transformers (the long part; .ci/run starts it beside make test);
# test-py312 then installs r3lab into it (setuptools writes r3lab.egg-info here: not while make test does).
venv312:
	@test -n "$(PY312)" || { echo "error: no Python 3.12 found (pyenv install 3.12, or make test-py312 PY312=/path/to/python3.12)" >&2; exit 1; }
	test -x $(VENV312)/bin/python || $(PY312) -m venv $(VENV312)
	$(VENV312)/bin/pip install --quiet --disable-pip-version-check --upgrade $(PINS312)

test-py312: venv312
	$(VENV312)/bin/pip install --quiet --disable-pip-version-check -e ".[test,lora,explain]"
	$(VENV312)/bin/python -c "import platform, torch, transformers; print('[py312] python', platform.python_version(), 'torch', torch.__version__, 'transformers', transformers.__version__)"
	$(VENV312)/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist worksteal $(PYTEST_ARGS) $(CORE_TESTS)

clean:
	rm -rf $(VENV) $(VENV312) runs site .site-src .cache .pytest_cache
