"""coco-annotator import: every quirk of its COCO export, on a hand-made export fixture."""
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
from posedata.errors import DataError, InputError, PosedataError
from posedata.formats import coco_annotator as CA
from posedata.importer import ImportOptions, ImportReport, detect_format, import_file
from posedata.validate import validate_coco

DATA = Path(__file__).parent / "data" / "import"
EXPORT = DATA / "coco_annotator_export.json"
COCO17 = S.resolve("coco17")


def _images(root: Path) -> Path:
    """The export's images as a user has them locally: img_0002 sits in a subfolder, matching
    only the tail of its server `path`."""
    for rel in ("img_0001.jpg", "session2/img_0002.jpg", "img_0003.jpg", "img_0004.jpg"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), np.full((240, 320, 3), 90, np.uint8))
    return root


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return _images(tmp_path / "images")


def _run(images: Path | None = None, **kw):
    return import_file("coco-annotator", EXPORT, COCO17, ImportOptions(images=images, **kw))


def _by_id(result) -> dict:
    return {a["id"]: a for a in result.dataset.to_coco()["annotations"]}


def _raw() -> dict:
    return json.loads(EXPORT.read_text())


def test_detected_by_content():
    assert detect_format(EXPORT) == "coco-annotator"


def test_keypoint_only_annotation_gets_bbox_from_keypoints_and_area(images):
    r = _run(images)
    a = _by_id(r)[101]
    raw = next(x for x in _raw()["annotations"] if x["id"] == 101)
    assert raw["area"] == 0 and raw["bbox"] == [0, 0, 0, 0]
    kp = np.asarray(raw["keypoints"], float).reshape(-1, 3)
    lab = kp[kp[:, 2] > 0]
    x0, y0 = lab[:, :2].min(0)
    x1, y1 = lab[:, :2].max(0)
    mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    assert a["bbox"] == pytest.approx([x0 - mx, y0 - my, x1 - x0 + 2 * mx, y1 - y0 + 2 * my], abs=0.01)
    assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3], rel=1e-6)
    assert a["area"] >= 32 * 32  # the reference would have dropped the raw export's area 0
    what = next(k for k in r.report.repairs if k.startswith("bbox computed from labelled keypoints"))
    assert r.report.repair_examples[what] == [101, 103]
    assert r.report.repairs["area set to the bbox area (was missing or 0)"] == 2


def test_bbox_margin_is_configurable_and_clipped_to_the_image(images):
    wide = _by_id(_run(images, bbox_margin=5.0))[101]["bbox"]
    assert wide[0] == 0 and wide[1] == 0 and wide[0] + wide[2] == 320 and wide[1] + wide[3] == 240
    tight = _by_id(_run(images, bbox_margin=0.0))[101]["bbox"]
    assert tight == [104, 48, 51, 160]


def test_polygon_only_annotation_is_a_zero_keypoint_instance_never_keyerror(images):
    r = _run(images)
    a = _by_id(r)[104]
    assert a["keypoints"] == [0] * 51 and a["num_keypoints"] == 0
    assert a["segmentation"] and a["area"] == 8230 and a["bbox"] == [146, 40, 50, 190]
    assert r.report.repair_examples["annotation without keypoints kept as a zero-keypoint instance"] == [104]
    dropped = _run(images, drop_unlabelled=True)
    assert 104 not in _by_id(dropped)
    assert dropped.report.skip_examples["instance with no labelled keypoints (--drop-unlabelled)"] == [104]
    # its image then holds nothing and goes too
    assert 4 not in {im.id for im in dropped.dataset.images}


def test_keypoints_beyond_3k_are_cut_and_reported_with_ids(images):
    r = _run(images)
    a = _by_id(r)[102]
    raw = next(x for x in _raw()["annotations"] if x["id"] == 102)
    assert len(raw["keypoints"]) == 3 * 17 + 3
    assert len(a["keypoints"]) == 51
    assert a["num_keypoints"] == 16  # the export counted the unlabelled extra point: 17
    what = next(k for k in r.report.repairs if k.startswith("keypoints beyond"))
    assert r.report.repairs[what] == 1 and r.report.repair_examples[what] == [102]
    assert r.report.repair_examples["num_keypoints recomputed from the keypoints"] == [102]


def test_names_matched_by_name_output_in_skeleton_order(images):
    r = _run(images)
    cat = r.dataset.categories[0]
    assert cat.keypoints == list(COCO17.coco_keypoints) and cat.id == 1 and cat.name == "person"
    assert len(cat.skeleton) == len(COCO17.limbs)
    # "Left Ear" (export slot 3) of annotation 101 is (139, 50, occluded)
    a = _by_id(r)[101]
    j = COCO17.coco_keypoints.index("left_ear")
    assert a["keypoints"][3 * j: 3 * j + 3] == [139, 50, 1]


def test_shuffled_export_names_give_the_same_result(images, tmp_path):
    """Position never matters: reorder the category's names and every annotation's triples."""
    raw = _raw()
    cat = raw["categories"][0]
    perm = np.random.default_rng(3).permutation(17)
    cat["keypoints"] = [cat["keypoints"][i] for i in perm]
    for a in raw["annotations"]:
        if a.get("keypoints") and a["category_id"] == 1:
            kp = a["keypoints"]
            a["keypoints"] = list(itertools.chain.from_iterable(kp[3 * i: 3 * i + 3] for i in perm)) + kp[51:]
    p = tmp_path / "shuffled.json"
    p.write_text(json.dumps(raw))
    got = import_file("coco-annotator", p, COCO17, ImportOptions(images=images)).dataset.to_coco()
    assert got["annotations"] == _run(images).dataset.to_coco()["annotations"]


def test_other_categories_and_their_crowd_regions_stay_out(images):
    r = _run(images)
    by = _by_id(r)
    assert 105 not in by and 106 not in by  # car box and car crowd region
    assert by[107]["iscrowd"] == 1 and by[107]["num_keypoints"] == 0  # the person category's own crowd
    assert r.report.skipped["annotation of another category (id 2, 'car'; crowd regions included)"] == 2
    assert {a["category_id"] for a in by.values()} == {1}
    assert len(r.dataset.categories) == 1


def test_booleans_and_extra_keys_tolerated_and_left_out(images):
    out = _run(images).dataset.to_coco()
    for a in out["annotations"]:
        assert isinstance(a["iscrowd"], int) and not isinstance(a["iscrowd"], bool)
        assert not {"isbbox", "color", "metadata", "creator", "events", "milliseconds"} & set(a)
    for im in out["images"]:
        assert not {"path", "dataset_id", "annotated", "category_ids"} & set(im)


def test_images_resolved_by_file_name_then_tail_of_path(images):
    r = _run(images)
    names = {im.id: im.file_name for im in r.dataset.images}
    assert names[1] == "img_0001.jpg" and names[2] == "session2/img_0002.jpg"
    assert r.report.repair_examples["image file_name resolved under --images (by file name or tail of path)"] == \
        ["img_0002.jpg -> session2/img_0002.jpg"]


def test_empty_images_only_with_keep_empty(images):
    assert 3 not in {im.id for im in _run(images).dataset.images}
    assert 3 in {im.id for im in _run(images, keep_empty=True).dataset.images}


def test_result_passes_validate(images):
    r = _run(images)
    findings = validate_coco(r.dataset.to_coco(), COCO17, images=images)
    assert not [f for f in findings if f.severity == "error"], findings
    assert r.report.instances_read == 5 and r.report.instances_written == 5
    assert r.report.images_read == 4 and r.report.images_written == 3


def test_missing_image_is_a_located_error(tmp_path):
    root = tmp_path / "images"
    _images(root)
    (root / "session2" / "img_0002.jpg").unlink()
    with pytest.raises(DataError) as e:  # the data's error (exit 1, V050), located
        _run(root)
    assert "img_0002.jpg" in str(e.value) and e.value.where == "images[1]" and e.value.exit_code == 1


def test_category_choice(images, tmp_path):
    assert _run(images, category="person").dataset.categories[0].id == 1
    assert _run(images, category="1").dataset.categories[0].id == 1
    with pytest.raises(InputError, match="no keypoint category 'car'"):
        _run(images, category="car")
    raw = _raw()
    raw["categories"].append({**raw["categories"][0], "id": 9, "name": "other"})
    p = tmp_path / "two.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="--category"):
        import_file("coco-annotator", p, COCO17, ImportOptions(images=images))


def test_unknown_and_missing_names_listed(tmp_path):
    raw = _raw()
    raw["categories"][0]["keypoints"][0] = "Snout"
    p = tmp_path / "x.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(InputError) as e:
        import_file("coco-annotator", p, COCO17, ImportOptions())
    assert "'Snout'" in e.value.message and "'nose'" in e.value.message
    assert e.value.where == "categories[0].keypoints"


def test_truncated_file_is_located(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(EXPORT.read_text()[:3000])
    with pytest.raises(InputError) as e:
        import_file("coco-annotator", p, COCO17, ImportOptions())
    assert e.value.where.startswith("line ")


# ------------------------------------------------------------------ round trip
def test_round_trip_coco_to_coco_annotator_to_coco(tmp_path):
    """COCO -> coco-annotator style (integer coordinates, area 0 / empty boxes) -> COCO keeps
    every labelled keypoint within rounding."""
    rng = np.random.default_rng(0)
    sk = S.resolve("object5")
    W, H = 400, 300
    images, anns = [], []
    for i in range(1, 7):
        images.append({"id": i, "file_name": f"f{i}.jpg", "width": W, "height": H})
        for j in range(2):
            kp = np.zeros((5, 3))
            kp[:, 0] = rng.uniform(5, W - 5, 5)
            kp[:, 1] = rng.uniform(5, H - 5, 5)
            kp[:, 2] = rng.choice([0, 1, 2], 5, p=[0.2, 0.3, 0.5])
            kp[kp[:, 2] == 0, :2] = 0
            kp[0] = (kp[0, 0] or 50.0, kp[0, 1] or 50.0, 2)  # every keypoint type labelled somewhere
            anns.append({"id": 10 * i + j, "image_id": i, "category_id": 1, "keypoints": kp.ravel().tolist(),
                         "num_keypoints": int((kp[:, 2] > 0).sum()), "bbox": [1, 1, W - 2, H - 2],
                         "area": (W - 2) * (H - 2), "iscrowd": 0, "segmentation": []})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "tool", "keypoints": list(sk.keypoints), "skeleton": [[1, 2]]}]}
    p = tmp_path / "ca.json"
    CA.write(coco, p)
    written = json.loads(p.read_text())
    assert all(a["area"] == 0 and a["bbox"] == [0, 0, 0, 0] for a in written["annotations"])
    assert detect_format(p) == "coco-annotator"
    back = {a["id"]: a for a in import_file("auto", p, sk, ImportOptions()).dataset.to_coco()["annotations"]}
    for a in anns:
        src = np.asarray(a["keypoints"]).reshape(-1, 3)
        got = np.asarray(back[a["id"]]["keypoints"]).reshape(-1, 3)
        assert np.array_equal(got[:, 2], src[:, 2])
        lab = src[:, 2] > 0
        assert np.abs(got[lab, :2] - src[lab, :2]).max() <= 0.5


# ------------------------------------------------------------- malformed input
_counter = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_json(_raw(), max_depth=5))
def test_malformed_exports_raise_only_posedata_errors(data):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"m{next(_counter)}.json"
        p.write_text(json.dumps(data, allow_nan=True))
        try:
            r = import_file("coco-annotator", p, COCO17, ImportOptions())
        except PosedataError:
            return
        json.dumps(r.dataset.to_coco(), allow_nan=False)  # whatever is read can be written


def test_reader_rejects_non_objects_with_location():
    with pytest.raises(InputError) as e:
        CA.read_coco_like({"images": [1], "categories": []}, Path("x.json"), COCO17, ImportOptions(),
                          ImportReport("coco-annotator", "x.json"))
    assert e.value.where in ("images[0]", "categories")
