"""`make bench` (bench/run_all.py) must run every command whose figures bench/README.md and README.md
quote (and the guides in docs/), as they quote it (issue 15: "reproduces every figure in bench/README.md in one command"):
each quoted `bench/...py` command is in run_all's full list or in its MANUAL list (with the reason
`make bench` leaves it out), and bench/README.md quotes every command of both, so the list and the
README cannot drift apart unnoticed."""
from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = re.compile(r"^(?:.*/)?((?:bench_\w+|synth_learnability|demo_inference)\.py)$")


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def quoted_commands(text: str, command_key) -> dict[tuple[str, ...], int]:
    """Every inline-code span naming a bench script, outside headings and fenced blocks (a heading
    names its section's script, not a command), as command_key sees it -> its line number."""
    lines = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced or line.startswith("#") else line)
    body = "\n".join(lines)
    found: dict[tuple[str, ...], int] = {}
    for m in re.finditer(r"`([^`]+)`", body):
        tokens = shlex.split(m.group(1))
        at = next((i for i, t in enumerate(tokens) if SCRIPT.match(t)), None)
        if at is None:
            continue
        key = command_key(SCRIPT.match(tokens[at]).group(1), tokens[at + 1:])
        found.setdefault(key, body.count("\n", 0, m.start()) + 1)
    return found


def test_quoted_commands_are_what_make_bench_runs() -> None:
    ra = _run_all()
    full = {ra.command_key(s, a) for _n, s, a in ra.scripts(Path("/OUT"), quick=False)}
    manual = {ra.command_key(c.split()[0], shlex.split(c)[1:]) for c in ra.MANUAL}
    for doc in ("bench/README.md", "README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))):
        quoted = quoted_commands((ROOT / doc).read_text(), ra.command_key)
        stray = {" ".join(k): line for k, line in quoted.items() if k not in full | manual}
        assert not stray, f"{doc}: commands neither run by bench/run_all.py nor in its MANUAL list: {stray}"
    quoted = quoted_commands((ROOT / "bench" / "README.md").read_text(), ra.command_key)
    unquoted = sorted(" ".join(k) for k in (full | manual) - set(quoted))
    assert not unquoted, f"bench/README.md does not quote these commands of bench/run_all.py: {unquoted}"


def test_quick_run_covers_only_listed_scripts_with_small_inputs() -> None:
    ra = _run_all()
    names = [n for n, _s, _a in ra.scripts(Path("/OUT"), quick=False)]
    quick = ra.scripts(Path("/OUT"), quick=True)
    assert len(names) == len(set(names))
    assert [n for n, _s, _a in quick] == [n for n in names if n in {q for q, _s, _a in quick}]
    # every script of the full run is exercised by the quick one at least once
    assert {s for _n, s, _a in quick} == {s for _n, s, _a in ra.scripts(Path("/OUT"), quick=False)}


def test_command_key_drops_locations_only() -> None:
    ra = _run_all()
    key = ra.command_key("bench/bench_convert.py", ["--headline", "3", "--data", "/tmp/x", "-o", "y"])
    assert key == ("bench_convert.py", "--headline", "3")
    assert ra.command_key("bench_synth.py", ["--ab", "/tmp/old", "--pairs", "4"]) == \
        ("bench_synth.py", "--ab", "OTHER", "--pairs", "4")
    assert quoted_commands("x `PYTHONPATH=. .venv/bin/python bench/bench_infer.py --rounds\n3` y\n"
                           "## t (`bench/bench_val.py`)\n```\nbench/bench_val.py\n```", ra.command_key) == \
        {("bench_infer.py", "--rounds", "3"): 1}
