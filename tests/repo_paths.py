"""Where the project's files are, for tests (a plain module: tests import it, never conftest)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TEMPLATES = ROOT / "posedata" / "templates"
TEMPLATE_NAMES = sorted(p.stem for p in TEMPLATES.glob("*.yaml"))
