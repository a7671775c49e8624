# Two commands on a fresh machine: `make demo` (the main job on a built-in dataset) and
# `make test` (the whole test suite). Both set up .venv first; torch is the local CPU build.
VENV ?= .venv
PY := $(VENV)/bin/python
WHEELS := $(wildcard /opt/wheels)

.PHONY: setup test test-all demo fuzz bench bench-quick lint wheel-smoke

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q $(if $(WHEELS),--find-links $(WHEELS)) torch==2.13.0
	$(PY) -m pip install -q $(if $(WHEELS),--find-links $(WHEELS)) -e '.[train,dev,onnx,deeplabcut]'
	# The SLEAP tests: sleap-io without the NWB, rendering and ffmpeg stack it also pulls (pynwb, skia,
	# imageio-ffmpeg, aiohttp...: +358 MB). posedata's SLEAP paths need only these, all pinned, and
	# OpenCV (a core dependency) reads the videos; pandas is for sleap-io's DeepLabCut reader, the
	# tests' independent check. Users get the full set with `pip install 'posedata[sleap]'`.
	$(PY) -m pip install -q $(if $(WHEELS),--find-links $(WHEELS)) attrs==26.1.0 imageio==2.38.2 lazy-loader==0.6 \
		shapely==2.2.0 simplejson==4.3.0 tqdm==4.70.1 pandas==3.1.1
	$(PY) -m pip install -q $(if $(WHEELS),--find-links $(WHEELS)) --no-deps sleap-io==0.9.5
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

# Every figure in bench/README.md, each command as the README quotes it (hours on 2 cores; outputs and
# a summary with times and load averages in bench-out/). bench-quick: the same scripts on small
# inputs, to check that all of them still run (bench/README.md says how long each takes).
bench: setup
	$(PY) bench/run_all.py -o bench-out

bench-quick: setup
	$(PY) bench/run_all.py --quick -o bench-out/quick

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
