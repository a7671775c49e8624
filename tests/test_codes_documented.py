"""Every finding code posedata can emit is documented, and every documented code exists.

Codes are stable identifiers users search for (docs/checks.md for V, C and F codes, docs/skeleton.md
for S codes); a code added without its entry, or an entry left behind by a removed code, fails here.
"""
from __future__ import annotations

import ast
import re

from repo_paths import ROOT

CODE = re.compile(r"[VSCF]\d{3}")
DOCS = (ROOT / "docs" / "checks.md", ROOT / "docs" / "skeleton.md")


def emitted() -> set[str]:
    """Every string literal in posedata/ that is a finding code."""
    found = set()
    for path in (ROOT / "posedata").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value):
                found.add(node.value)
    return found


def entries() -> set[str]:
    """Codes with an entry of their own: a `### CODE` heading or a `| CODE |` table row."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    return set(re.findall(r"^(?:### |\| )([VSCF]\d{3})\b", text, flags=re.M))


def mentioned() -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    return set(re.findall(r"\b([VSCF]\d{3})\b", text))


def test_every_code_has_its_entry():
    codes = emitted()
    assert len(codes) > 60  # the reader finds the codes (V, S, C and F)
    # the flip check's F codes are described together, in the flip check's section
    missing = {c for c in codes if c not in (mentioned() if c.startswith("F") else entries())}
    assert missing == set(), f"codes without an entry in docs/checks.md or docs/skeleton.md: {sorted(missing)}"


def test_every_entry_is_a_code_posedata_emits():
    stale = entries() - emitted()
    assert stale == set(), f"documented codes that posedata never emits: {sorted(stale)}"


def test_the_validate_table_and_its_docs_agree():
    from posedata.validate import CHECKS

    assert {c for c in entries() if c.startswith("V")} == set(CHECKS)


def test_the_reference_page_names_tests_that_exist():
    """docs/reference.md proves each convention by a test's name: the name must stay a test."""
    page = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(test_[a-z0-9_]+)\b", page)) - {f"test_{p}" for p in
                                                                ("augment", "convert", "evaluate", "grouping",
                                                                 "model", "predict", "targets")}
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.M))
    assert len(named) > 20 and named - defined == set()
