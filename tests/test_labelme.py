"""Labelme JSON import: point shapes grouped by group_id, rectangles as boxes, the CLI around it."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import InputError, PosedataError
from posedata.formats import labelme as L
from posedata.formats.base import ImportOptions

DATA = Path(__file__).parent / "data" / "import"
PROJ = DATA / "labelme_project"
SKEL = DATA / "dlc_mouse.yaml"


@pytest.fixture
def sk() -> S.Skeleton:
    return S.load(SKEL)


def copy_proj(tmp: Path) -> Path:
    dst = tmp / "lm"
    shutil.copytree(PROJ, dst)
    return dst


def test_detect() -> None:
    assert L.detect(PROJ) and L.detect(PROJ / "cage_a.json")
    assert not L.detect(DATA / "dlc_project")
    assert not L.detect(DATA / "yolo_dataset" / "data.yaml")


def test_folder_golden(sk) -> None:
    r = L.read(PROJ, sk, ImportOptions())
    ds = r.dataset
    assert [(im.file_name, im.width, im.height) for im in ds.images] == [("cage_a.jpg", 128, 96), ("cage_b.png", 100, 80)]
    a = [x.keypoints.ravel().tolist() for x in ds.annotations]
    # group 1: 'Right Ear' flagged occluded -> v=1; the rectangle of group 1 is its box
    assert a[0] == [30.5, 20, 2, 22, 14, 2, 38, 14, 1, 30, 60, 2]
    assert ds.annotations[0].bbox == (15, 8, 35, 62)
    # group 2 has no right ear and no rectangle: box from its keypoints
    assert a[1] == [90, 30, 2, 84, 24, 2, 0, 0, 0, 92, 75, 2]
    # cage_b: points without group_id are one instance; the repeated 'snout' keeps the first point
    assert a[2] == [50, 30, 2, 0, 0, 0, 58, 22, 2, 0, 0, 0]
    assert [x.image_id for x in ds.annotations] == [1, 1, 2]
    skipped = r.report.skipped
    assert skipped["keypoint label repeats among points without a group_id (first point kept)"] == 1
    assert any(k.startswith("polygon shape ignored") for k in skipped)
    assert r.report.repairs[next(k for k in r.report.repairs if k.startswith("bbox computed"))] == 2


def test_single_file(sk) -> None:
    ds = L.read(PROJ / "cage_b.json", sk, ImportOptions()).dataset
    # imagePath '..\\labelme_project\\cage_b.png' (Windows separators, via the parent) lands inside the folder
    assert [im.file_name for im in ds.images] == ["cage_b.png"] and len(ds.annotations) == 1


def test_unknown_label_lists_it(sk, tmp_path) -> None:
    d = copy_proj(tmp_path)
    doc = json.loads((d / "cage_a.json").read_text())
    doc["shapes"][0]["label"] = "whisker"
    (d / "cage_a.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as e:
        L.read(d, sk, ImportOptions())
    assert "whisker" in str(e.value)


def test_repeated_label_within_group(sk, tmp_path) -> None:
    d = copy_proj(tmp_path)
    doc = json.loads((d / "cage_a.json").read_text())
    doc["shapes"].append(copy.deepcopy(doc["shapes"][0]) | {"points": [[1.0, 1.0]]})
    (d / "cage_a.json").write_text(json.dumps(doc))
    r = L.read(d, sk, ImportOptions())
    assert r.report.skipped["keypoint label repeats within one group_id (first point kept)"] == 1
    assert r.dataset.annotations[0].keypoints[0].tolist() == [30.5, 20, 2]


def test_images_folder_elsewhere(sk, tmp_path) -> None:
    d = copy_proj(tmp_path)
    imgs = tmp_path / "pics"
    imgs.mkdir()
    for n in ("cage_a.jpg", "cage_b.png"):
        (d / n).rename(imgs / n)
    with pytest.raises(InputError, match="not found"):
        L.read(d, sk, ImportOptions())
    ds = L.read(d, sk, ImportOptions(images=imgs)).dataset
    assert [im.file_name for im in ds.images] == ["cage_a.jpg", "cage_b.png"]


def test_cli_import_and_auto(runner, tmp_path) -> None:
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "auto", str(PROJ), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "import labelme" in res.output
    data = json.loads(out.read_text())
    assert len(data["annotations"]) == 3 and data["categories"][0]["keypoints"][1] == "left_ear"


@pytest.mark.parametrize("edit, where", [
    (lambda t: t[: len(t) // 2], "invalid JSON"),
    (lambda t: t.replace('"shape_type": "point"', '"shape_type": "point", "points": 5', 1), "points"),
    (lambda t: t.replace('"imagePath": "cage_a.jpg"', '"imagePath": "gone.jpg"'), "not found"),
    (lambda t: t.replace('"imagePath": "cage_a.jpg"', '"imagePath": "../../etc/passwd"'), "outside"),
    (lambda t: t.replace('"label": "Snout"', '"label": "whisker"'), "whisker"),
    (lambda t: t.replace('"group_id": 1', '"group_id": [1]', 1), "group_id"),
])
def test_broken_input_exit_2_nothing_written(runner, tmp_path, edit, where) -> None:
    d = copy_proj(tmp_path)
    f = d / "cage_a.json"
    f.write_text(edit(f.read_text()))
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "labelme", str(f), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert where in res.output and "cage_a.json" in res.output and "Traceback" not in res.output
    assert not out.exists()


# ----------------------------------------------------------------- property
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 500) | st.integers() | st.floats(allow_nan=True)
                     | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                     max_leaves=6)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_json_raises_only_posedata_errors(tmp_path_factory, data) -> None:
    d = copy_proj(tmp_path_factory.mktemp("m"))
    f = d / "cage_a.json"
    doc = json.loads(f.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        p = data.draw(st.sampled_from(paths))
        parent = doc
        for k in p[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()):
            parent[p[-1]] = data.draw(_JSON)
        elif isinstance(parent, dict):
            del parent[p[-1]]
        else:
            parent.pop(p[-1])
    f.write_text(json.dumps(doc))
    try:
        r = L.read(d, S.load(SKEL), ImportOptions(keep_empty=True))
    except PosedataError:
        return
    for a in r.dataset.annotations:
        assert a.keypoints.shape == (4, 3) and np.isfinite(a.keypoints).all()
