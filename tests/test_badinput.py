"""Every command on every broken input of tests/badinput (made by tests/badinput/make_corpus.py).

For each (case, command): the documented exit code (1 the data has errors, 2 unreadable input),
a message naming the file and the location, no traceback, no output file created, and every
input byte-identical afterwards. A good control runs the same command lines on the base inputs
and must exit 0, so a case cannot pass by a malformed command line (click's usage error is
also exit 2).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posedata.cli import cli

CORPUS = Path(__file__).resolve().parent / "badinput"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
CASES = {c["name"]: c for c in MANIFEST["cases"]}
TORCH_KINDS = {"labels", "checkpoint", "val-images"}
# a wide console: rich folds table cells, which would split a location across lines
WIDE = {"COLUMNS": "400"}

# a tiny run for the commands that train: one step on 32 x 32 crops of a quarter-width network
TRAIN_SMALL = ["--iterations", "1", "--batch-size", "1", "--input-size", "32", "--width", "0.25", "--stages", "0",
               "--threads", "1"]


def _skeleton_arg(spec: str, base: Path) -> str:
    return str(base.parent / spec) if "/" in spec else spec


def command(cmd: str, kind: str, inp: Path, base: Path, out: Path, case: dict | None = None) -> list[str]:
    """The command line `cmd` for an input of reader `kind` (paths in a scratch copy)."""
    case = case or {}
    train = base / "train"
    if kind in ("coco", "images"):
        images = inp.parent / case["images"] if kind == "images" else base / "images"
        sk = ["--skeleton", "coco17"]
        img = ["--images", str(images)] if kind == "images" else []
        return {
            "validate": ["validate", str(inp), *sk, *img],
            "convert": ["convert", str(inp), *sk, "-o", str(out / "labels.npz"), *img],
            "check": ["check", str(inp), *sk, *img],
            "flipcheck": ["flipcheck", str(inp), *sk, "-o", str(out / "flip"), *img],
            "import": ["import", "coco-annotator", str(inp), *sk, "-o", str(out / "imported.json"), *img],
            "preview": ["preview", str(inp), *sk, "--images", str(images), "-o", str(out / "preview"), "-n", "2",
                        "--input-size", "64"],
        }[cmd]
    if kind.startswith("import:"):
        sk = ["--skeleton", _skeleton_arg(case["skeleton"], base)]
        if case.get("category"):
            sk += ["--category", case["category"]]
        return {
            "import": ["import", kind.split(":", 1)[1], str(inp), *sk, "-o", str(out / "imported.json")],
            "import-auto": ["import", "auto", str(inp), *sk, "-o", str(out / "imported.json")],
            "convert": ["convert", str(inp), *sk, "-o", str(out / "labels.npz")],
        }[cmd]
    if kind == "skeleton":
        coco = str(base / "coco.json")
        return {
            "skeleton-check": ["skeleton", "check", str(inp)],
            "skeleton-show": ["skeleton", "show", str(inp), "--plot", str(out / "skeleton.png")],
            "validate": ["validate", coco, "--skeleton", str(inp)],
            "convert": ["convert", coco, "--skeleton", str(inp), "-o", str(out / "labels.npz")],
            "check": ["check", coco, "--skeleton", str(inp)],
        }[cmd]
    if kind == "labels":
        return {
            "train-labels": ["train", "--skeleton", "object5", "--labels", str(inp), "--images", str(train / "images"),
                             "-o", str(out / "run"), *TRAIN_SMALL],
            "preview-labels": ["preview", str(inp), "--skeleton", "object5", "--images", str(train / "images"),
                               "-o", str(out / "preview"), "-n", "1", "--input-size", "64"],
        }[cmd]
    if kind == "checkpoint":
        return {
            "train-init": ["train", "--skeleton", "object5", "--labels", str(train / "labels.npz"), "--images",
                           str(train / "images"), "-o", str(out / "run"), "--init", str(inp), *TRAIN_SMALL],
            "val": ["val", "--skeleton", "object5", "--checkpoint", str(inp), "--coco", str(train / "annotations.json"),
                    "--images", str(train / "images"), "-o", str(out / "val"), "--input-size", "64", "--overlays", "0"],
        }[cmd]
    if kind == "val-images":
        images = inp.parent / case["images"]
        good = str(train / "good.pt")
        return {
            "val": ["val", "--skeleton", "object5", "--checkpoint", good, "--coco", str(inp), "--images", str(images),
                    "-o", str(out / "val"), "--input-size", "64", "--overlays", "0"],
            "infer": ["infer", str(inp.parent / case["image"]), "--checkpoint", good, "--skeleton", "object5",
                      "-o", str(out / "infer"), "--input-size", "64"],
        }[cmd]
    raise AssertionError(f"unknown kind {kind}")


def snapshot(root: Path) -> dict[str, str]:
    """Every file and symlink under root: content hash or link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def squash(text: str) -> str:
    """Output without whitespace and table borders: rich folds long cells across lines."""
    return re.sub(r"[\s│┃|]+", "", text)


def scratch(tmp_path: Path, name: str | None) -> tuple[Path, Path]:
    """(case folder, base folder) copied into tmp_path; the corpus itself is never touched."""
    base = tmp_path / "base"
    shutil.copytree(CORPUS / "base", base, symlinks=True)
    case_dir = tmp_path / "case"
    if name is not None:
        shutil.copytree(CORPUS / "cases" / name, case_dir, symlinks=True)
    return case_dir, base


def run_case(runner, tmp_path: Path, name: str, cmd: str) -> None:
    case = CASES[name]
    case_dir, base = scratch(tmp_path, name)
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    args = command(cmd, case["kind"], case_dir / case["input"], base, out, case)
    r = runner.invoke(cli, args, catch_exceptions=True, env=WIDE)
    text = r.output
    where = f"{name} / {cmd}: {' '.join(args)}\n{text}"
    # no traceback: a non-SystemExit exception is a crash (CliRunner would report it as exit 1)
    assert r.exception is None or isinstance(r.exception, SystemExit), where + "\n" + repr(r.exception)
    assert "Traceback" not in text, where
    assert "Usage:" not in text and "No such option" not in text, where
    assert r.exit_code == case["expect"][cmd], where
    s = squash(text)
    files = {p.name for p in case_dir.rglob("*")}
    assert any(f in s for f in files), f"no input file named in the message\n{where}"
    loc = case.get("where_cmd", {}).get(cmd, case["where"])
    assert squash(loc) in s, f"location {loc!r} not in the message\n{where}"
    # nothing written, nothing changed, and nothing unpickled
    assert snapshot(tmp_path) == before, where
    assert not Path("UNPICKLED").exists()


PARAMS = [(n, c) for n, case in CASES.items() for c in case["expect"] if case["kind"] not in TORCH_KINDS]
TORCH_PARAMS = [(n, c) for n, case in CASES.items() for c in case["expect"] if case["kind"] in TORCH_KINDS]


@pytest.mark.parametrize("name,cmd", PARAMS, ids=[f"{n}-{c}" for n, c in PARAMS])
def test_bad_input(runner, tmp_path, monkeypatch, name, cmd):
    monkeypatch.chdir(tmp_path)
    run_case(runner, tmp_path, name, cmd)


@pytest.mark.parametrize("name,cmd", TORCH_PARAMS, ids=[f"{n}-{c}" for n, c in TORCH_PARAMS])
def test_bad_labels_and_checkpoints(runner, tmp_path, monkeypatch, name, cmd):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    run_case(runner, tmp_path, name, cmd)


# ------------------------------------------------------------------ controls
def _controls() -> list[tuple[str, str]]:
    seen = {}
    for case in CASES.values():
        kind = case["kind"]
        if kind in ("coco", "images", "skeleton", "labels", "checkpoint", "val-images"):
            for c in case["expect"]:
                seen.setdefault((kind, c), None)
    return sorted(seen)


def _good_input(kind: str, base: Path) -> tuple[Path, dict]:
    return {
        "coco": (base / "coco.json", {}),
        "images": (base / "coco.json", {"images": "images"}),
        "skeleton": (base.parent / "coco17.yaml", {}),
        "labels": (base / "train" / "labels.npz", {}),
        "checkpoint": (base / "train" / "good.pt", {}),
        "val-images": (base / "train" / "annotations.json", {"images": "images", "image": "images/000001.jpg"}),
    }[kind]


@pytest.mark.parametrize("kind,cmd", _controls(), ids=[f"{k}-{c}" for k, c in _controls()])
def test_good_control(runner, tmp_path, monkeypatch, kind, cmd):
    """The same command lines on good inputs succeed: the corpus cases fail for their one defect."""
    if kind in TORCH_KINDS:
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    _, base = scratch(tmp_path, None)
    shutil.copyfile(Path(__file__).resolve().parent.parent / "posedata" / "templates" / "coco17.yaml", tmp_path / "coco17.yaml")
    inp, case = _good_input(kind, base)
    args = command(cmd, kind, inp, base, tmp_path / "out", case)
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, f"{' '.join(args)}\n{r.output}\n{r.exception!r}"


def test_good_import_fixtures_import(runner, tmp_path):
    """Each import case's format reads its unbroken fixture (the cases break one thing each)."""
    fixtures = Path(__file__).resolve().parent / "data" / "import"
    base = CORPUS / "base"
    good = {"coco-annotator": (fixtures / "coco_annotator_export.json", "coco17"),
            "cvat": (fixtures / "cvat_images_1_1.xml", "object5"),
            "label-studio": (fixtures / "label_studio_export.json", "object5"),
            "deeplabcut": (fixtures / "dlc_project" / "labeled-data" / "mouse1" / "CollectedData_Alice.csv",
                           str(base / "mouse.yaml")),
            "labelme": (fixtures / "labelme_project" / "cage_a.json", str(base / "mouse.yaml")),
            "yolo": (fixtures / "yolo_dataset" / "data.yaml", str(base / "mouse.yaml"))}
    for fmt, (p, sk) in good.items():
        extra = ["--category", "mouse"] if fmt == "yolo" else []
        r = runner.invoke(cli, ["import", fmt, str(p), "--skeleton", sk, "-o", str(tmp_path / f"{fmt}.json"), *extra])
        assert r.exit_code in (0, 1), (fmt, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit), (fmt, r.exception)
        assert "Traceback" not in r.output


# ------------------------------------------------------------------ corpus
def test_corpus_size_and_coverage():
    kinds = {c["kind"] for c in CASES.values()}
    assert len(CASES) >= 40
    assert {"coco", "images", "skeleton", "labels", "checkpoint"} <= kinds
    from posedata.formats import FORMATS

    assert {f"import:{f}" for f in FORMATS} <= kinds


def test_corpus_is_reproduced_by_its_script(tmp_path):
    """The committed corpus is exactly what make_corpus.py writes (nobody hand-edits a case)."""
    pytest.importorskip("torch")
    subprocess.run([sys.executable, str(CORPUS / "make_corpus.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    ours = {k: v for k, v in snapshot(tmp_path).items()}
    committed = {k: v for k, v in snapshot(CORPUS).items()
                 if k.split(os.sep)[0] in ("base", "cases", "manifest.json")}
    assert ours == committed
