# Two commands on a fresh machine: `make demo` (the main job on a built-in dataset) and
# `make test` (the whole test suite). Both set up .venv first; torch is the local CPU build.
VENV ?= .venv
PY := $(VENV)/bin/python
WHEELS := $(wildcard /opt/wheels)

.PHONY: setup test test-all demo fuzz bench lint wheel-smoke

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q $(if $(WHEELS),--find-links $(WHEELS)) torch==2.13.0
	$(PY) -m pip install -q $(if $(WHEELS),--find-links $(WHEELS)) -e '.[train,dev,onnx,deeplabcut]'
	touch $@

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ''

demo: setup
	$(VENV)/bin/posedata demo -o demo-out --force

# the cross-module property tests with 10,000 examples each (CI runs the bounded "ci" profile)
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_properties.py

lint: setup
	$(VENV)/bin/ruff check posedata trainer tests bench

# CI: the package as users get it (a wheel in a fresh venv, not the editable checkout): templates
# must resolve by name and the quick demo must run from an empty folder.
SMOKE := $(shell mktemp -d -u /tmp/posedata-wheel.XXXXXX)
wheel-smoke: setup
	$(PY) -m pip wheel -q --no-deps -w $(SMOKE)/dist .
	python3 -m venv $(SMOKE)/venv
	$(SMOKE)/venv/bin/pip install -q $(if $(WHEELS),--find-links $(WHEELS)) torch==2.13.0
	$(SMOKE)/venv/bin/pip install -q $(if $(WHEELS),--find-links $(WHEELS)) "$$(ls $(SMOKE)/dist/posedata-*.whl)[train]"
	cd $(SMOKE) && MPLBACKEND=Agg venv/bin/posedata skeleton show coco17 >/dev/null
	cd $(SMOKE) && MPLBACKEND=Agg venv/bin/posedata skeleton check openpose18
	cd $(SMOKE) && MPLBACKEND=Agg venv/bin/posedata demo --quick -o demo-out
	rm -rf $(SMOKE)
