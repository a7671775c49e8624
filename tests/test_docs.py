"""The user guide's console sessions are real: every `$ posedata ...` line in docs/custom-dataset.md
is run, in order, in one folder laid out as the guide says, and its output must be what the guide
shows (a line that is only `...` stands for lines cut from the guide). A figure in the guide that
drifts from what the software prints fails here.

`python tests/test_docs.py` prints each command's actual output, for updating the guide.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "custom-dataset.md"
EXPORT = ROOT / "tests" / "data" / "import" / "coco_annotator_export.json"


def sessions(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every `$ ` line of every console block, in order."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif out:
                out[-1][1].append(line)
    return out


def _trim(lines: list[str]) -> list[str]:
    lines = [x.rstrip() for x in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


# The training loss printed after a few steps differs in its last digits between CPUs: torch picks
# AVX-512 or AVX2 kernels, whose float sums round differently (245.8 on one 2-core VM, 247.8 on
# another with AVX-512, the same code and seed). So a `last loss` figure matches within 5%; every
# other character of the line, and every other line, must be the same.
_LOSS = re.compile(r"last loss (\d+(?:\.\d+)?)")
LOSS_TOLERANCE = 0.05


def same_line(expected: str, actual: str) -> bool:
    if expected == actual:
        return True
    e, a = _LOSS.search(expected), _LOSS.search(actual)
    if e is None or a is None or _LOSS.sub("", expected) != _LOSS.sub("", actual):
        return False
    return abs(float(a[1]) - float(e[1])) <= LOSS_TOLERANCE * abs(float(e[1]))


def _same(expected: list[str], actual: list[str]) -> bool:
    return len(expected) == len(actual) and all(map(same_line, expected, actual))


def matches(expected: list[str], actual: list[str]) -> str | None:
    """None when actual is expected with the `...` cuts filled in, else the first difference."""
    exp, act = _trim(expected), _trim(actual)
    parts: list[list[str]] = [[]]
    for line in exp:
        if line.strip() == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    pos = 0
    for n, part in enumerate(parts):
        if not part:
            continue
        if n == 0:  # no cut before it: the output starts with it
            if not _same(part, act[:len(part)]):
                return _first_diff(part, act[:len(part)])
            pos = len(part)
            continue
        for start in range(pos, len(act) - len(part) + 1):
            if _same(part, act[start:start + len(part)]):
                pos = start + len(part)
                break
        else:
            return f"not found in the output after line {pos}: {part[0]!r} ..."
    if parts[-1] and pos != len(act):
        return f"the output goes on after the guide's last line: {act[pos]!r}"
    return None


def _first_diff(exp: list[str], act: list[str]) -> str:
    for i, (e, a) in enumerate(zip(exp, act)):
        if not same_line(e, a):
            return f"line {i + 1}:\n  guide:  {e!r}\n  actual: {a!r}"
    return f"{len(exp)} line(s) in the guide, {len(act)} printed"


def guide_folder(root: Path) -> Path:
    """The folder the guide runs in: the export, and stand-in images laid out as a user has them
    (img_0002 in a subfolder, matching only the tail of its server path)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(EXPORT, root / EXPORT.name)
    for rel in ("img_0001.jpg", "session2/img_0002.jpg", "img_0003.jpg", "img_0004.jpg"):
        p = root / "images" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), np.full((240, 320, 3), 90, np.uint8))
    return root


# a progress bar's last frame ("train ━━━━ 20/20 ... 0:00:22 0:00:00"): at a terminal it is redrawn
# in place, so the guide does not show it
_BAR = re.compile(r"^[^┃│┏┡└].*━.*\d+:\d\d:\d\d\s*$")


def run(command: str, cwd: Path) -> tuple[int, list[str]]:
    args = shlex.split(command)
    assert args[0] == "posedata", command
    env = {**os.environ, "COLUMNS": "100", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT), "NO_COLOR": "1",
           "TERM": "dumb"}
    r = subprocess.run([sys.executable, "-m", "posedata.cli", *args[1:]], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=900)
    if args[1:3] == ["skeleton", "init"] and r.returncode == 0:
        paste_coco_sigmas(cwd / args[args.index("-o") + 1])
    return r.returncode, [x for x in (r.stdout + r.stderr).splitlines() if not _BAR.match(x)]


def paste_coco_sigmas(path: Path) -> None:
    """The guide's one hand edit after `skeleton init`: these walkers are people, so COCO's person
    sigmas replace the 0.05 placeholders (matched by name)."""
    import yaml

    from posedata import skeleton as S

    coco = S.resolve("coco17")
    by_name = {S.normalize_name(k): s for k, s in zip(coco.keypoints, coco.sigmas)}
    d = yaml.safe_load(path.read_text(encoding="utf-8"))
    d["sigmas"] = [by_name[S.normalize_name(k)] for k in d["keypoints"]]
    path.write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")


def test_parser_and_matcher():
    text = "```console\n$ posedata a\nx\n...\nz\n```\nprose\n```console\n$ posedata b\n```\n"
    assert sessions(text) == [("posedata a", ["x", "...", "z"]), ("posedata b", [])]
    assert matches(["x", "...", "z"], ["x", "y", "y", "z"]) is None
    assert matches(["x", "...", "z"], ["x", "z"]) is None
    assert matches(["x", "z"], ["x", "y", "z"]) is not None
    assert matches(["x", "...", "z"], ["x", "y", "z", "w"]) is not None
    assert matches(["x", "..."], ["x", "y", "z", "w"]) is None
    assert matches(["a 247.3"], ["a 253.2"]) is not None
    done = "done: iteration 20, last loss {}, best validation AP 0.0000; run folder run"
    assert matches([done.format("245.8")], [done.format("247.8")]) is None  # another CPU's rounding
    assert matches([done.format("245.8")], [done.format("262.1")]) is not None  # not a rounding difference
    assert matches([done.format("245.8")], [done.format("245.8").replace("AP 0.0000", "AP 0.0100")]) is not None
    assert matches(["x", "...", done.format("245.8")], ["x", "y", done.format("247.8")]) is None


def test_custom_dataset_guide_prints_what_it_shows(tmp_path):
    folder = guide_folder(tmp_path / "guide")
    steps = sessions(GUIDE.read_text(encoding="utf-8"))
    assert len(steps) >= 10, "the guide's console sessions were not found"
    failures = []
    for command, expected in steps:
        code, actual = run(command, folder)
        assert code == 0, f"`{command}` exited {code}:\n" + "\n".join(actual[-20:])
        diff = matches(expected, actual)
        if diff:
            failures.append(f"`{command}`: {diff}")
    assert not failures, "docs/custom-dataset.md is out of date (`python tests/test_docs.py` prints the outputs):\n" \
        + "\n".join(failures)


if __name__ == "__main__":  # print the real outputs, to paste into the guide
    import tempfile

    with tempfile.TemporaryDirectory() as td:
        folder = guide_folder(Path(td) / "guide")
        for command, _expected in sessions(GUIDE.read_text(encoding="utf-8")):
            code, actual = run(command, folder)
            print(f"$ {command}  [exit {code}]")
            print("\n".join(actual))
            print()

