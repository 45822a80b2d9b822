# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv and install torch, the core and all six plugins (editable); safe to re-run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := srcnn fxsr gflmser fasrgan srrescgan spandrel
# torch builds that lie on this workplace's disk (see README, "Installing").
TORCH ?= $(shell [ "$$(uname -m)" = aarch64 ] && echo "torch==2.9.1 torchvision==0.24.1" || echo "torch==2.14.1 torchvision==0.29.1")
STAMP := $(VENV)/.srcore-installed
PYTEST_ARGS ?=

.PHONY: install test demo lint clean-venv

$(STAMP): pyproject.toml $(foreach p,$(PLUGINS),plugins/$(p)/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]" $(foreach p,$(PLUGINS),-e plugins/$(p))
	@# NIQE's pristine model ships only inside basicsr's sdist; srcore reads that data file and never
	@# imports basicsr (its dependencies clash with headless OpenCV), hence --no-deps. Optional.
	@$(PY) -c "import importlib.util as u; exit(u.find_spec('basicsr') is None)" || \
		$(PY) -m pip install -q --no-deps --no-build-isolation basicsr==1.4.2 || echo "note: basicsr not installed; core:niqe unavailable"
	@# spandrel is the spandrel plugin's optional dependency (extra "spandrel"), installed on its own
	@# so that an offline machine still gets everything else; the plugin then reports itself failed.
	@$(PY) -c "import importlib.util as u; exit(u.find_spec('spandrel') is None)" || \
		$(PY) -m pip install -q "spandrel>=0.4.2" || echo "note: spandrel not installed; the spandrel plugin is unavailable"
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/srcore demo

lint: $(STAMP)
	$(VENV)/bin/ruff check core plugins tests benchmarks

clean-venv:
	rm -rf $(VENV)
