from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from repo_paths import SHARED

# Property tests that do not fix max_examples take it from this profile: a bounded run in CI,
# 10,000 examples with `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
settings.register_profile("ci", max_examples=40)
settings.register_profile("fuzz", max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))



_cache_count = 0


@pytest.fixture(autouse=True)
def _onnx_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Each test's own ONNX graph cache (trainer/onnx_cache.py), in the test run's folder: never
    the user's ~/.cache, and never another test's (`auto` picks by whether the graph is cached, so
    a shared cache would make outputs depend on the tests' order). Made when first written."""
    global _cache_count
    _cache_count += 1
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache" / str(_cache_count)))
    monkeypatch.delenv("POSEDATA_ONNX_CACHE", raising=False)


@pytest.fixture
def shared_real() -> Path:
    """../shared/data/real, or skip cleanly when the shared folder is absent."""
    p = SHARED / "data" / "real"
    if not p.is_dir():
        pytest.skip("../shared/data/real is not present")
    return p


@pytest.fixture
def shared_reference() -> Path:
    """../shared/reference (the reference's conventions and parity data), or skip cleanly."""
    p = SHARED / "reference"
    if not p.is_dir():
        pytest.skip("../shared/reference is not present")
    return p


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()
