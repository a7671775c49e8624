"""Property tests that span modules (per-module properties live in each module's test file).

- COCO reader: random COCO documents, structurally valid or mutated at random paths, make
  coco.from_coco return a Dataset or raise a PosedataError, nothing else; a document validate
  passes is read by from_coco, converted by convert.to_labels and survives the label file round
  trip (labels.save/load) unchanged.
- validate --fix: on documents with random mechanical defects the fixed copy validates clean of
  every fixable code (fix.FIXABLE); on randomly mutated documents, every (code, annotation)
  fix reports as changed is gone from the re-validation.
- importers: every import fixture with random byte-level damage (flips, cuts, inserted junk,
  repeated spans), read by its own format and by `auto`, raises only PosedataError; what reads
  is validated and written as strict JSON.
- target rendering: random keypoints (NaN, inf, huge, negative, any visibility) render finite
  heatmaps in [0, 1] and PAFs in [-1, 1], or raise PosedataError.

The number of examples comes from the hypothesis profile (tests/conftest.py): a bounded number in
CI, 10,000 with `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from json_strategies import json_paths

from posedata import coco
from posedata import fix as F
from posedata import skeleton as S
from posedata import validate as V
from posedata.errors import PosedataError

SK = S.resolve("coco17")
K = SK.num_keypoints
FIXTURES = Path(__file__).resolve().parent / "data" / "import"

# per-test example counts are the profile's; only health checks and deadline are set here
PROP = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                       HealthCheck.filter_too_much])

JUNK = st.sampled_from([None, True, False, "x", "", 10**400, -(10**30), float("nan"), float("inf"), -1, 0, 1.5,
                        [], {}, [[[]]], {"a": [1, None]}, "9" * 50, [float("nan")] * (3 * K), [1] * (3 * K + 3),
                        [0, 0, 3] * K, [2**63, 2**64, 1] * K, -0.0, 1e308])


# ------------------------------------------------------------------ documents
@st.composite
def coco_docs(draw, defects: bool = True) -> dict:
    """A structurally valid COCO keypoint document for coco17; with defects, annotations carry
    the mechanical problems --fix repairs (wrong or missing num_keypoints, area, box, iscrowd,
    coordinates on v=0 points)."""
    n_img = draw(st.integers(1, 3))
    images = []
    for i in range(n_img):
        w, h = draw(st.integers(16, 300)), draw(st.integers(16, 300))
        images.append({"id": i + 1, "file_name": f"{i + 1:04d}.jpg", "width": w, "height": h})
    anns = []
    for a in range(draw(st.integers(1, 4))):
        im = draw(st.sampled_from(images))
        w, h = im["width"], im["height"]
        kp, pts = [], []
        for _ in range(K):
            v = draw(st.sampled_from([0, 1, 2, 2]))
            if v:
                x = draw(st.one_of(st.integers(0, w - 1), st.floats(0, w - 1, allow_nan=False)))
                y = draw(st.one_of(st.integers(0, h - 1), st.floats(0, h - 1, allow_nan=False)))
                pts.append((x, y))
            elif defects and draw(st.integers(0, 9)) == 0:
                x, y = draw(st.integers(1, w - 1)), draw(st.integers(1, h - 1))  # V024
            else:
                x = y = 0
            kp += [x, y, v]
        if not pts:  # one labelled point, so a missing box can be made from the keypoints
            kp[0:3] = [w // 2, h // 2, 2]
            pts.append((w // 2, h // 2))
        bbox = F.bbox_from_points([p[0] for p in pts], [p[1] for p in pts], w, h)
        ann = {"id": 10 + a, "image_id": im["id"], "category_id": 1, "iscrowd": 0, "keypoints": kp,
               "num_keypoints": sum(1 for j in range(2, 3 * K, 3) if kp[j]), "bbox": bbox,
               "area": round(bbox[2] * bbox[3], 2), "segmentation": []}
        if defects:
            which = draw(st.sets(st.sampled_from(["nk", "area", "bbox", "crowd"]), max_size=4))
            if "nk" in which:
                if draw(st.booleans()):
                    del ann["num_keypoints"]
                else:
                    ann["num_keypoints"] = ann["num_keypoints"] + draw(st.integers(1, 5))
            if "area" in which:
                choice = draw(st.sampled_from(["del", 0, -5.0, "12"]))
                if choice == "del":
                    del ann["area"]
                else:
                    ann["area"] = choice
            if "bbox" in which:
                choice = draw(st.sampled_from(["del", "zero", "negative", "short"]))
                if choice == "del":
                    del ann["bbox"]
                elif choice == "zero":
                    ann["bbox"] = [bbox[0], bbox[1], 0, bbox[3]]
                elif choice == "negative":
                    ann["bbox"] = [bbox[0], bbox[1], bbox[2], -bbox[3]]
                else:
                    ann["bbox"] = bbox[:3]
            if "crowd" in which:
                del ann["iscrowd"]
        anns.append(ann)
    cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(SK.coco_keypoints),
           "skeleton": [[a + 1, b + 1] for a, b in SK.limbs]}
    return {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": [cat]}


@st.composite
def mutated(draw, base=None):
    """A document with 1-4 random deletions, replacements or duplications at random paths."""
    d = copy.deepcopy(draw(base if base is not None else coco_docs(defects=False)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(json_paths(d, list_limit=60))))
        if not path:
            d = copy.deepcopy(draw(JUNK))
            continue
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if op == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = copy.deepcopy(draw(JUNK))
    return d


def _codes_at(findings, code: str, ann: int) -> list:
    pre = f"annotations[{ann}]"
    return [f for f in findings if f.code == code and f.where and (f.where == pre or f.where.startswith(pre + ".")
                                                                   or f.where.startswith(pre + "["))]


# ------------------------------------------------------------------ COCO reader
@PROP
@given(mutated())
def test_coco_reader_raises_only_posedata_errors(doc):
    try:
        ds = coco.from_coco(doc, file="fuzz.json")
    except PosedataError as e:
        assert e.file == "fuzz.json" and e.exit_code in (1, 2)
        return
    # every record is kept (nothing dropped silently) with integer ids
    assert [len(ds.images), len(ds.annotations), len(ds.categories)] == \
        [len(doc["images"]), len(doc["annotations"]), len(doc["categories"])]
    assert all(isinstance(a.id, int) and isinstance(a.image_id, int) for a in ds.annotations)


@PROP
@given(st.one_of(coco_docs(defects=False), mutated()))
def test_validate_clean_means_every_reader_accepts(doc):
    """validate passing is the contract for the rest: from_coco, to_labels, the label file."""
    from posedata.convert import to_labels
    from posedata.labels import load, save

    findings = V.validate_coco(doc, SK, file="fuzz.json")
    if any(f.severity == "error" for f in findings):
        return
    ds = coco.from_coco(doc, file="fuzz.json")
    labels = to_labels(ds, SK, source="fuzz.json")
    assert labels.keypoints.shape == (len(labels.inst_ids), SK.num_keypoints, 3)
    assert np.isfinite(labels.keypoints).all() and np.isfinite(labels.bbox).all()
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "l.npz"
        save(labels, p)
        back = load(p)
    for name in ("keypoints", "bbox", "area", "samples", "inst_ids", "image_ids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(labels, name))
    assert back.fingerprint == SK.fingerprint


# ------------------------------------------------------------------ validate --fix
@PROP
@given(coco_docs(defects=True))
def test_fix_output_is_clean_of_fixable_codes(doc):
    findings = V.validate_coco(doc, SK, file="in.json")
    fixed, changes = F.fix(doc, SK, findings)
    after = V.validate_coco(fixed, SK, file="out.json")
    left = [f for f in after if f.code in F.FIXABLE]
    assert not left, [(f.code, f.where, f.message) for f in left]
    json.dumps(fixed, allow_nan=False)


@PROP
@given(mutated(coco_docs(defects=True)))
def test_fix_removes_what_it_says_it_fixed(doc):
    before = json.dumps(doc, allow_nan=True, sort_keys=True, default=str)
    findings = V.validate_coco(doc, SK, file="in.json")
    try:
        fixed, changes = F.fix(doc, SK, findings)
    except PosedataError:
        assert not (isinstance(doc, dict) and isinstance(doc.get("annotations"), list))
        return
    assert json.dumps(doc, allow_nan=True, sort_keys=True, default=str) == before  # fix works on a copy
    after = V.validate_coco(fixed, SK, file="out.json")
    import re

    for ch in changes:
        m = re.match(r"^annotations\[(\d+)\]", ch.where)
        assert m, ch
        still = _codes_at(after, ch.code, int(m.group(1)))
        assert not still, (ch, [(f.where, f.message) for f in still])


# ------------------------------------------------------------------ importers
def _fixtures() -> list[tuple[str, str, str, str | None]]:
    """(format, fixture path relative to tests/data/import, file to damage, skeleton, category)."""
    mouse = str(FIXTURES / "dlc_mouse.yaml")
    return [
        ("coco-annotator", "coco_annotator_export.json", "coco_annotator_export.json", "coco17", None),
        ("cvat", "cvat_images_1_1.xml", "cvat_images_1_1.xml", "object5", None),
        ("cvat", "cvat_coco_keypoints.json", "cvat_coco_keypoints.json", "object5", None),
        ("label-studio", "label_studio_export.json", "label_studio_export.json", "object5", None),
        ("deeplabcut", "dlc_project/labeled-data/mouse1/CollectedData_Alice.csv",
         "dlc_project/labeled-data/mouse1/CollectedData_Alice.csv", mouse, None),
        ("deeplabcut", "dlc_ma_project/labeled-data/session1/CollectedData_Bob.csv",
         "dlc_ma_project/labeled-data/session1/CollectedData_Bob.csv", mouse, None),
        ("labelme", "labelme_project/cage_a.json", "labelme_project/cage_a.json", mouse, None),
        ("yolo", "yolo_dataset/data.yaml", "yolo_dataset/labels/train/a.txt", mouse, "mouse"),
        ("yolo", "yolo_dataset/data.yaml", "yolo_dataset/data.yaml", mouse, "mouse"),
    ]


FIXTURE_CASES = _fixtures()


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """1-4 byte-level injuries: flip bytes, cut, insert junk or digits, repeat a span."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "digits"]))
        at = draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del b[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            b[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "digits":
            b[at:at] = draw(st.sampled_from([b"9" * 40, b"-1", b"nan", b"1e999", b"NaN", b"\xff\xfe", b",", b"\""]))
        else:
            n = draw(st.integers(1, 80))
            b[at:at] = b[at:at + n]
    return bytes(b)


@pytest.mark.parametrize("fmt,root,target,skeleton,category", FIXTURE_CASES,
                         ids=[f"{c[0]}:{Path(c[2]).name}" for c in FIXTURE_CASES])
def test_damaged_exports_raise_only_posedata_errors(fmt, root, target, skeleton, category):
    from posedata.formats.base import ImportOptions
    from posedata.importer import import_file, validate_result

    sk = S.resolve(skeleton)
    top = root.split("/")[0]
    original = (FIXTURES / target).read_bytes()

    @PROP
    @given(damaged(original), st.booleans())
    def check(data, auto):
        with tempfile.TemporaryDirectory() as tmp:
            src = FIXTURES / top
            dst = Path(tmp) / top
            if src.is_dir():
                shutil.copytree(src, dst)
            (Path(tmp) / target).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / target).write_bytes(data)
            opts = ImportOptions(category=category)
            try:
                result = import_file("auto" if auto else fmt, Path(tmp) / root, sk, opts)
            except PosedataError as e:
                assert e.exit_code in (1, 2) and str(e)
                return
            findings = validate_result(result, sk, opts, file="out.json")
            assert all(f.code in V.CHECKS for f in findings)
            json.dumps(result.dataset.to_coco(), allow_nan=False)

    check()


# ------------------------------------------------------------------ targets
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-50, 100),
                    st.sampled_from([0.0, -0.0, 1e308, -1e308, 2.0**63, 1e-320]))


@st.composite
def keypoint_arrays(draw, k: int):
    n = draw(st.integers(0, 4))
    vals = draw(st.lists(NUMBERS, min_size=n * k * 2, max_size=n * k * 2))
    vis = draw(st.lists(st.one_of(st.sampled_from([0.0, 1.0, 2.0]), NUMBERS), min_size=n * k, max_size=n * k))
    kp = np.zeros((n, k, 3))
    if n:
        kp[..., :2] = np.array(vals, dtype=np.float64).reshape(n, k, 2)
        kp[..., 2] = np.array(vis, dtype=np.float64).reshape(n, k)
    return kp


@PROP
@given(st.sampled_from(["object5", "coco17", "openpose18"]).flatmap(
    lambda name: st.tuples(st.just(name), keypoint_arrays(S.resolve(name).num_keypoints))),
    st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 4, 8]),
    st.floats(0.3, 10), st.floats(0.2, 3))
def test_targets_are_bounded_for_any_keypoints(named, map_h, map_w, stride, sigma, thickness):
    from posedata.targets import render_targets

    name, kp = named
    sk = S.resolve(name)
    try:
        with np.errstate(all="ignore"):
            heat, pafs = render_targets(kp, sk, map_h, map_w, stride, sigma, thickness)
    except PosedataError:
        return
    assert heat.shape == (sk.num_keypoints + 1, map_h, map_w) and pafs.shape == (2 * sk.num_limbs, map_h, map_w)
    assert np.isfinite(heat).all() and np.isfinite(pafs).all()
    assert heat.min() >= 0 and heat.max() <= 1
    assert pafs.min() >= -1 - 1e-6 and pafs.max() <= 1 + 1e-6


@PROP
@given(keypoint_arrays(S.resolve("object5").num_keypoints), st.floats(-100, 200), st.floats(-100, 200),
       st.one_of(st.floats(0.01, 5), NUMBERS), st.booleans(), st.integers(0, 2**32 - 1))
def test_training_sample_from_any_keypoints(kp, cx, cy, scale, augment, seed):
    """augment + targets together: any instance array gives a bounded sample or a PosedataError."""
    from posedata.augment import AugmentConfig, make_sample

    sk = S.resolve("object5")
    assume(len(kp) > 0)
    cfg = AugmentConfig(crop_w=32, crop_h=32, input_size=32)
    image = np.full((40, 48, 3), 100, dtype=np.uint8)
    try:
        with np.errstate(all="ignore"):
            s = make_sample(image, kp, np.array([cx, cy]), scale, None, sk, cfg, np.random.default_rng(seed), augment)
    except PosedataError:
        return
    assert np.isfinite(s.heatmaps).all() and np.isfinite(s.pafs).all()
    assert s.heatmaps.min() >= 0 and s.heatmaps.max() <= 1 and np.abs(s.pafs).max() <= 1 + 1e-6
    assert s.image.shape[:2] == (32, 32) and math.isfinite(float(s.mask.sum()))
