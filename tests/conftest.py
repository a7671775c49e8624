from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TEMPLATES = ROOT / "templates"
TEMPLATE_NAMES = sorted(p.stem for p in TEMPLATES.glob("*.yaml"))


@pytest.fixture
def shared_real() -> Path:
    """../shared/data/real, or skip cleanly when the shared folder is absent."""
    p = SHARED / "data" / "real"
    if not p.is_dir():
        pytest.skip("../shared/data/real is not present")
    return p


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()
