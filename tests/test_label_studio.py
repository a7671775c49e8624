"""Label Studio import: keypointlabels in percent, instances by parent region, relations or task."""
from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from json_strategies import mutated_json

from posedata import skeleton as S
from posedata.errors import InputError, PosedataError
from posedata.formats import label_studio as LS
from posedata.importer import ImportOptions, detect_format, import_file
from posedata.validate import validate_coco

DATA = Path(__file__).parent / "data" / "import"
EXPORT = DATA / "label_studio_export.json"
OBJ5 = S.resolve("object5")
_counter = itertools.count()


def _raw() -> list:
    return json.loads(EXPORT.read_text())


def _write(tmp: Path, data) -> Path:
    p = tmp / f"ls{next(_counter)}.json"
    p.write_text(json.dumps(data, allow_nan=True))
    return p


def _kp(ann: dict, name: str) -> list:
    j = OBJ5.coco_keypoints.index(name)
    return ann["keypoints"][3 * j: 3 * j + 3]


def _point(rid: str, name: str, x: float, y: float, **kw) -> dict:
    return {"id": rid, "type": "keypointlabels", "from_name": "kp", "to_name": "image", "original_width": 200,
            "original_height": 100, "image_rotation": 0,
            "value": {"x": x / 2, "y": y, "width": 0.5, "keypointlabels": [name]}, **kw}


def _task(tid: int, result: list) -> dict:
    return {"id": tid, "data": {"image": f"/data/upload/1/a1b2c3d4-t{tid}.png"},
            "annotations": [{"id": tid, "result": result, "was_cancelled": False}], "predictions": []}


def test_detected():
    assert detect_format(EXPORT) == "label-studio"
    assert LS.detect(DATA / "coco_annotator_export.json") is False


def test_fixture_instances_grouped_by_parent_relations_and_task():
    r = import_file("label-studio", EXPORT, OBJ5, ImportOptions())
    out = r.dataset.to_coco()
    by_img: dict[int, list] = {}
    for a in out["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    assert {k: len(v) for k, v in by_img.items()} == {1: 2, 2: 2, 3: 1}
    # task 1: parentID -> the rectangle gives the bbox; percent -> pixels of original_width/height
    t1a, t1b = by_img[1]
    assert t1a["bbox"] == pytest.approx([18, 12, 75, 76]) and _kp(t1a, "center") == [55.2, 50.3, 2]
    assert t1b["bbox"] == pytest.approx([120, 70, 60, 60]) and _kp(t1b, "top_right") == [0, 0, 0]
    assert _kp(t1b, "top_left") == [125, 76, 2]  # "top_left" and "bottom-right" match by name
    # task 2: relation components
    t2a, t2b = by_img[2]
    assert t2a["num_keypoints"] == 5 and t2b["num_keypoints"] == 3
    assert _kp(t2b, "top_right") == [181, 21, 2]
    # task 3: one instance, a name repeated -> first kept, warned
    (t3,) = by_img[3]
    assert _kp(t3, "center") == [100, 75, 2]
    assert any("placed more than once" in w for w in r.report.warnings)
    assert r.report.skipped["model predictions (not human labels) ignored"] == 1
    assert r.report.skipped["cancelled (skipped) annotation"] == 1
    assert r.report.skipped["another annotator's annotation of the same task (the first is imported)"] == 1


def test_image_names_from_urls():
    assert LS.image_names("/data/upload/7/8f2c1a9e-tool_01.jpg") == \
        ("tool_01.jpg", ["8f2c1a9e-tool_01.jpg", "data/upload/7/8f2c1a9e-tool_01.jpg"])
    assert LS.image_names("/data/local-files/?d=bench%20shots/tool_02.jpg") == \
        ("bench shots/tool_02.jpg", ["tool_02.jpg"])
    assert LS.image_names("s3://lab-bucket/raw/tool_03.jpg")[0] == "tool_03.jpg"
    assert LS.image_names("https://x.org/img/a-b.jpg")[0] == "a-b.jpg"


def test_images_resolved_and_validated(tmp_path):
    root = tmp_path / "images"
    for rel in ("tool_01.jpg", "bench shots/tool_02.jpg", "tool_03.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), np.zeros((150, 200, 3), np.uint8))
    r = import_file("auto", EXPORT, OBJ5, ImportOptions(images=root))
    assert [im.file_name for im in r.dataset.images] == ["tool_01.jpg", "bench shots/tool_02.jpg", "tool_03.jpg"]
    findings = validate_coco(r.dataset.to_coco(), OBJ5, images=root)
    assert not [f for f in findings if f.severity == "error"], findings


def test_no_structure_two_people_one_instance_with_warning(tmp_path):
    pts = [_point(f"p{i}", n, 10 + i, 10) for i, n in enumerate(OBJ5.keypoints)]
    pts += [_point("q0", "center", 150, 50), _point("q1", "Top Left", 140, 40)]
    r = import_file("label-studio", _write(tmp_path, [_task(1, pts)]), OBJ5, ImportOptions())
    (a,) = r.dataset.to_coco()["annotations"]
    assert _kp(a, "center") == [10, 10, 2]
    assert any("['center', 'top_left']" in w for w in r.report.warnings)


def test_loose_points_beside_regions_form_one_more_instance(tmp_path):
    pts = [_point("a", "center", 20, 20, parentID="r"), _point("b", "center", 150, 50),
           {"id": "r", "type": "rectanglelabels", "original_width": 200, "original_height": 100,
            "value": {"x": 5, "y": 10, "width": 20, "height": 30, "rectanglelabels": ["object5"]}}]
    r = import_file("label-studio", _write(tmp_path, [_task(1, pts)]), OBJ5, ImportOptions())
    anns = r.dataset.to_coco()["annotations"]
    assert len(anns) == 2 and anns[0]["bbox"] == [10, 10, 40, 30]
    assert r.report.repairs["points with no parent region, relation or rectangle grouped into one instance"] == 1


def test_unrelated_rectangles_skipped_matching_ones_unlabelled(tmp_path):
    rect = {"id": "car", "type": "rectanglelabels", "original_width": 200, "original_height": 100,
            "value": {"x": 5, "y": 10, "width": 20, "height": 30, "rectanglelabels": ["car"]}}
    pts = [_point(f"p{i}", n, 100 + i, 50) for i, n in enumerate(OBJ5.keypoints)] + [rect]
    r = import_file("label-studio", _write(tmp_path, [_task(1, pts)]), OBJ5, ImportOptions())
    assert len(r.dataset.annotations) == 1
    assert r.report.skipped["rectangle labelled ['car'] with no keypoints (not category 'object5')"] == 1
    r = import_file("label-studio", _write(tmp_path, [_task(1, pts)]), OBJ5, ImportOptions(category="car"))
    assert len(r.dataset.annotations) == 2  # the box is an instance nobody labelled: zero keypoints
    assert r.dataset.annotations[1].num_keypoints == 0


def test_unknown_names_skipped_and_counted_refused_when_none_is_known(tmp_path):
    """A name outside the skeleton used to abort the whole import; it is skipped and counted (as
    DeepLabCut's unique bodyparts are). With no known name at all, the located error remains."""
    data = _raw()
    data[1]["annotations"][0]["result"][0]["value"]["keypointlabels"] = ["Handle"]
    ref = import_file("label-studio", EXPORT, OBJ5, ImportOptions())
    r = import_file("label-studio", _write(tmp_path, data), OBJ5, ImportOptions())
    assert r.report.skipped["keypoint name 'Handle' not in skeleton 'object5'"] == 1
    assert sum(a.num_keypoints for a in r.dataset.annotations) == sum(a.num_keypoints for a in ref.dataset.annotations) - 1
    for t in data:
        for a in t["annotations"]:
            for res in a["result"]:
                if res.get("type") == "keypointlabels":
                    res["value"]["keypointlabels"] = ["Handle"]
    with pytest.raises(InputError) as e:
        import_file("label-studio", _write(tmp_path, data), OBJ5, ImportOptions())
    assert "'Handle'" in e.value.message and e.value.where.startswith("[0].annotations[0].result[")


def test_structural_errors_located(tmp_path):
    data = _raw()
    del data[0]["annotations"][0]["result"][1]["original_width"]
    for r in data[0]["annotations"][0]["result"]:
        r.pop("original_width", None)
    with pytest.raises(InputError, match="original_width") as e:
        import_file("label-studio", _write(tmp_path, data), OBJ5, ImportOptions())
    assert e.value.where.startswith("[0].annotations[0].result[")
    with pytest.raises(InputError, match="list of tasks"):
        import_file("label-studio", _write(tmp_path, {"tasks": []}), OBJ5, ImportOptions())
    p = tmp_path / "trunc.json"
    p.write_text(EXPORT.read_text()[:1500])
    with pytest.raises(InputError) as e:
        import_file("label-studio", p, OBJ5, ImportOptions())
    assert e.value.where.startswith("line ")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_json(_raw(), max_depth=7))
def test_malformed_exports_raise_only_posedata_errors(data):
    with tempfile.TemporaryDirectory() as d:
        try:
            r = import_file("label-studio", _write(Path(d), data), OBJ5, ImportOptions())
        except PosedataError:
            return
        json.dumps(r.dataset.to_coco(), allow_nan=False)


def test_json_min_export_gets_a_clear_message(tmp_path):
    rows = [{"image": "/data/upload/1/a1b2c3d4-t1.png", "id": 1,
             "kp-1": [{"x": 10, "y": 20, "width": 0.5, "keypointlabels": ["Center"], "original_width": 200,
                       "original_height": 100}]}]
    with pytest.raises(InputError, match="JSON-MIN") as e:
        import_file("label-studio", _write(tmp_path, rows), OBJ5, ImportOptions())
    assert e.value.where == "[0].data"


# ------------------------------------- rectangles without relations, several keypoint controls
RECTS = DATA / "label_studio_rects_two_controls.json"


def test_points_go_to_the_rectangle_that_contains_them_one_control_at_a_time():
    """Each tool has its rectangle but its points name no parentID and no relation: they used to
    become one instance (two animals merged, every repeated name lost). The project also has a
    second keypoint control, whose names (wrist, thumb) used to abort the import."""
    with pytest.raises(InputError, match="--control") as e:
        import_file("label-studio", RECTS, OBJ5, ImportOptions())
    assert "'kp-tool'" in e.value.message and "'kp-hand'" in e.value.message
    r = import_file("label-studio", RECTS, OBJ5, ImportOptions(control="kp-tool"))
    out = r.dataset.to_coco()
    t1 = [a for a in out["annotations"] if a["image_id"] == 1]
    assert len(t1) == 2
    assert [_kp(a, "center") for a in t1] == [[100, 100, 2], [280, 170, 2]]
    assert [a["num_keypoints"] for a in t1] == [5, 5]
    assert [a["bbox"] for a in t1] == [pytest.approx([50, 50, 100, 100]), pytest.approx([230, 120, 100, 100])]
    assert r.report.skipped["point of another keypoint control ('kp-hand', not --control 'kp-tool')"] == 3
    # task 2: overlapping rectangles; the point inside both is reported, never given to either
    t2 = [a for a in out["annotations"] if a["image_id"] == 2]
    assert [a["num_keypoints"] for a in t2] == [4, 5]
    assert _kp(t2[0], "center") == [0, 0, 0] and _kp(t2[1], "center") == [210, 100, 2]
    assert r.report.skipped["point without parentID or relation inside several rectangles (ambiguous: given to "
                            "no animal)"] == 1
    with pytest.raises(InputError, match="no keypoint control 'kp'"):
        import_file("label-studio", RECTS, OBJ5, ImportOptions(control="kp"))


def test_points_outside_every_rectangle_with_repeated_names_are_not_merged(tmp_path):
    rect = {"id": "r", "type": "rectanglelabels", "original_width": 200, "original_height": 100,
            "value": {"x": 5, "y": 10, "width": 20, "height": 30, "rectanglelabels": ["object5"]}}
    pts = [rect, _point("a", "center", 20, 20), _point("b", "center", 150, 50), _point("c", "center", 170, 70)]
    r = import_file("label-studio", _write(tmp_path, [_task(1, pts)]), OBJ5, ImportOptions())
    (a,) = r.dataset.to_coco()["annotations"]
    assert _kp(a, "center") == [20, 20, 2]
    assert sum(v for k, v in r.report.skipped.items() if "outside every rectangle" in k) == 2


def test_cli_import_with_control(runner, tmp_path):
    from posedata.cli import cli

    out = tmp_path / "o.json"
    r = runner.invoke(cli, ["import", "label-studio", str(RECTS), "--skeleton", "object5", "-o", str(out)])
    assert r.exit_code == 2 and "--control" in r.output and not out.exists()
    r = runner.invoke(cli, ["import", "auto", str(RECTS), "--skeleton", "object5", "--control", "kp-tool", "-o",
                            str(out)])
    assert r.exit_code == 0, r.output
    assert len(json.loads(out.read_text())["annotations"]) == 4
