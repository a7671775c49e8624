"""posedata convert: the reference's label rules, the lwop pickle, the label file and the CLI.

The expected lwop records below are worked out by hand from the reference's rules
(prepare_train_labels), not by running posedata.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import labels as L
from posedata import skeleton as S
from posedata.cli import cli
from posedata.convert import load_source, map_keypoints, to_labels
from posedata.errors import InputError
from posedata.formats.lwop import lwop_records, write_lwop_pickle

ROOT = Path(__file__).resolve().parent.parent

NAMES = ["a", "b", "c", "d", "e"]


def toy_skeleton() -> S.Skeleton:
    return S.from_dict({"name": "toy", "keypoints": NAMES, "limbs": [["a", "b"], ["b", "c"], ["c", "d"], ["d", "e"]],
                        "root": "a", "flip": [], "sigmas": [0.05] * 5})


def kps(x0: int, y0: int) -> list[int]:
    """COCO keypoints: a visible, b occluded, c unlabelled, d and e visible."""
    return [x0 + 1, y0 + 1, 2, x0 + 2, y0 + 2, 1, 0, 0, 0, x0 + 3, y0 + 3, 2, x0 + 4, y0 + 4, 2]


def internal(x0: int, y0: int) -> list[list[int]]:
    """kps(x0, y0) as the reference stores them: visibility 2->1, 1->0, 0->2, coordinates untouched."""
    return [[x0 + 1, y0 + 1, 1], [x0 + 2, y0 + 2, 0], [0, 0, 2], [x0 + 3, y0 + 3, 1], [x0 + 4, y0 + 4, 1]]


def person(aid, image_id, bbox, area, nk, x0=None, y0=None, **kw):
    x0 = int(bbox[0]) if x0 is None else x0
    y0 = int(bbox[1]) if y0 is None else y0
    return {"id": aid, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": bbox, "area": area,
            "num_keypoints": nk, "keypoints": kps(x0, y0), "segmentation": [[1, 2, 3, 4, 5, 6]], **kw}


CROWD_1 = [[0, 0, 10, 0, 10, 10]]
CROWD_2 = {"counts": [5, 10, 5], "size": [240, 320]}


def hand_coco() -> dict:
    """Image 1 exercises every sample rule; image 2 comes first in the annotations (so its record
    comes first); image 3 has only a crowd region and a zero-keypoint person (dropped); image 4
    has a person too weak to be a sample (no record, but an instance in the label file)."""
    anns = [
        person(20, 2, [10, 20, 40, 60], 2000, 5),                      # K: image 2's only person
        person(10, 1, [100, 100, 50, 100], 3000, 5),                   # A: accepted, centre (125, 150), w 50
        person(11, 1, [110, 105, 40, 90], 2500, 5),                    # B: 5 px from A < 15: dedup
        person(12, 1, [125, 110, 20, 100], 1500, 5),                   # C: (135,160), |d| = 14.14 < 15: dedup
        person(13, 1, [127, 112, 20, 100], 1500, 5),                   # D: (137,162), |d| = 16.97 >= 15: accepted
        person(14, 1, [135, 100, 10, 100], 1024, 5),                   # E: (140,150), |d| = 15 exactly, area 1024: accepted
        person(15, 1, [87, 130, 100, 80], 5000, 5),                    # F: (137,170), 8 from D (limit 0.3*20 = 6): accepted
        person(16, 1, [400, 300, 40, 40], 1023.9, 5),                  # G: area < 1024
        person(17, 1, [500, 300, 40, 50], 2000, 4),                    # H: num_keypoints < 5
        {"id": 18, "image_id": 1, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "area": 100,
         "bbox": [0, 0, 10, 10], "keypoints": [0] * 15, "segmentation": CROWD_1},     # I: crowd of image 1
        person(19, 1, [300, 300, 40, 40], 1600, 0),                    # J: no keypoints: not a person
        {"id": 21, "image_id": 2, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "area": 20,
         "bbox": [0, 0, 5, 4], "keypoints": [0] * 15, "segmentation": CROWD_2},       # L: crowd of image 2
        {"id": 22, "image_id": 3, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "area": 20,
         "bbox": [0, 0, 5, 4], "keypoints": [0] * 15, "segmentation": CROWD_1},       # M: crowd of image 3
        person(23, 3, [10, 10, 50, 50], 2500, 0),                      # N: image 3's zero-keypoint person
        person(24, 4, [10, 10, 50, 50], 2500, 3),                      # O: image 4, num_keypoints < 5
    ]
    images = [{"id": i, "file_name": f"img{i}.jpg", "width": w, "height": h}
              for i, w, h in ((1, 640, 480), (2, 320, 240), (3, 320, 240), (4, 320, 240))]
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "thing", "supercategory": "thing", "keypoints": NAMES,
                            "skeleton": [[1, 2], [2, 3], [3, 4], [4, 5]]}]}


def other(bbox, area, nk, x0=None, y0=None):
    x0 = int(bbox[0]) if x0 is None else x0
    y0 = int(bbox[1]) if y0 is None else y0
    return {"objpos": [bbox[0] + bbox[2] / 2, bbox[1] + bbox[3] / 2], "bbox": bbox, "segment_area": area,
            "scale_provided": bbox[3] / 368, "num_keypoints": nk, "keypoints": internal(x0, y0)}


# image 1's persons in file order: A B C D E F G H (J has num_keypoints 0, I is a crowd)
IMAGE1 = {"A": ([100, 100, 50, 100], 3000, 5), "B": ([110, 105, 40, 90], 2500, 5), "C": ([125, 110, 20, 100], 1500, 5),
          "D": ([127, 112, 20, 100], 1500, 5), "E": ([135, 100, 10, 100], 1024, 5), "F": ([87, 130, 100, 80], 5000, 5),
          "G": ([400, 300, 40, 40], 1023.9, 5), "H": ([500, 300, 40, 50], 2000, 4)}


def expected_records() -> list[dict]:
    recs = [{"img_paths": "img2.jpg", "img_width": 320, "img_height": 240, "objpos": [30.0, 50.0], "image_id": 2,
             "bbox": [10, 20, 40, 60], "segment_area": 2000, "scale_provided": 60 / 368, "num_keypoints": 5,
             "segmentations": [CROWD_2], "keypoints": internal(10, 20), "processed_other_annotations": []}]
    centres = {"A": [125.0, 150.0], "D": [137.0, 162.0], "E": [140.0, 150.0], "F": [137.0, 170.0]}
    for main in ("A", "D", "E", "F"):
        bbox, area, nk = IMAGE1[main]
        recs.append({"img_paths": "img1.jpg", "img_width": 640, "img_height": 480, "objpos": centres[main],
                     "image_id": 1, "bbox": bbox, "segment_area": area, "scale_provided": bbox[3] / 368,
                     "num_keypoints": nk, "segmentations": [CROWD_1], "keypoints": internal(bbox[0], bbox[1]),
                     "processed_other_annotations": [other(*IMAGE1[o]) for o in IMAGE1 if o != main]})
    return recs


# ----------------------------------------------------------------- lwop pickle
def test_lwop_records_match_hand_worked_reference():
    got = lwop_records(hand_coco())
    want = expected_records()
    assert [(r["image_id"], r["bbox"]) for r in got] == [(r["image_id"], r["bbox"]) for r in want]
    for g, w in zip(got, want):
        assert list(g) == list(w)  # key order as the reference's dict literal
        for o in g["processed_other_annotations"]:
            assert list(o) == ["objpos", "bbox", "segment_area", "scale_provided", "num_keypoints", "keypoints"]
        assert g == w
    # value types as the reference's: JSON ints stay ints, centres and scales are floats
    r = got[1]
    assert type(r["img_width"]) is int and type(r["objpos"][0]) is float and type(r["scale_provided"]) is float
    assert all(type(v) is int for k in r["keypoints"] for v in k)


def test_lwop_object_sharing_and_fresh_lists():
    data = hand_coco()
    got = lwop_records(data)
    a = data["annotations"][1]
    rec_a, rec_d = got[1], got[2]
    assert rec_a["bbox"] is a["bbox"]  # the annotation's own list, as the reference
    assert rec_d["processed_other_annotations"][0]["bbox"] is a["bbox"]
    assert rec_a["segmentations"] is rec_d["segmentations"]  # one crowd list per image
    assert rec_a["keypoints"] is not rec_d["processed_other_annotations"][0]["keypoints"]
    assert rec_a["keypoints"][0] is not rec_d["processed_other_annotations"][0]["keypoints"][0]
    assert rec_a["objpos"] is not rec_d["processed_other_annotations"][0]["objpos"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_convert", ROOT / "bench" / "bench_convert.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lwop_pickle_bytes_equal_reference_reimplementation(tmp_path, shared_real):
    """Byte-identical to the bench's faithful copy of the reference script, on real and generated data."""
    bench = _bench()
    datasets = [json.loads((shared_real / "coco" / "test_coco.json").read_text()), bench.make_coco(60, 200, seed=3),
                hand_coco()]
    for i, data in enumerate(datasets):
        ref = pickle.dumps(bench.reference_prepare(copy.deepcopy(data)))
        n = write_lwop_pickle(data, tmp_path / f"{i}.pkl")
        assert (tmp_path / f"{i}.pkl").read_bytes() == ref
        assert n == len(bench.reference_prepare(data))


def test_lwop_duplicate_dicts_are_skipped_like_the_reference():
    data = hand_coco()
    data["annotations"].insert(1, copy.deepcopy(data["annotations"][0]))  # K twice, equal dicts
    got = lwop_records(data)
    # both copies are samples? no: the second centre coincides with the first (dedup); and the
    # reference's `other == annotation` test leaves the identical twin out of the others
    assert [r["image_id"] for r in got] == [2, 1, 1, 1, 1]
    assert got[0]["processed_other_annotations"] == []


def test_lwop_missing_fields_are_located():
    data = hand_coco()
    del data["annotations"][1]["bbox"]
    with pytest.raises(InputError, match="lacks bbox") as e:
        lwop_records(data, file="x.json")
    assert e.value.where == "annotations[1]"
    data = hand_coco()
    del data["annotations"][1]["num_keypoints"]  # recounted from v > 0: 4 < 5, so A is no sample
    got = lwop_records(data)
    assert [r["bbox"] for r in got][:2] == [[10, 20, 40, 60], [110, 105, 40, 90]]


# ------------------------------------------------------------------- to_labels
def test_to_labels_matches_reference_rules():
    data = hand_coco()
    # the reference's own rule (5 labelled keypoints); the toy's default would be 2 (5 keypoints)
    lb = to_labels(data, toy_skeleton(), min_keypoints=5, source="hand.json", source_sha256="x")
    assert lb.image_ids.tolist() == [2, 1, 4]  # first appearance; image 3 has no person
    assert lb.file_names == ["img2.jpg", "img1.jpg", "img4.jpg"]
    assert lb.inst_ids.tolist() == [20, 10, 11, 12, 13, 14, 15, 16, 17, 24]
    assert lb.inst_image.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 2]
    assert lb.inst_ids[lb.samples].tolist() == [20, 10, 13, 14, 15]
    assert lb.crowd == [[CROWD_2], [CROWD_1], []]
    st_ = lb.extra["stats"]
    assert st_["rejected"] == {"min_keypoints": 2, "min_area": 1, "dedup": 2}
    assert st_["images_without_person"] == 1 and st_["crowd_regions"] == 2 and st_["crowd_regions_unused"] == 1
    assert lb.settings["min_area"] == 1024 and lb.settings["source"] == "hand.json"
    # keypoints: skeleton order == file order here; internal visibility; c unlabelled at (0, 0)
    np.testing.assert_array_equal(lb.keypoints[1], np.array(internal(100, 100), dtype=np.float32))
    # same samples as the reference pickle, record for record
    recs = lwop_records(data)
    assert [(r["image_id"], r["bbox"]) for r in recs] == [
        (int(lb.image_ids[lb.inst_image[s]]), lb.bbox[s].tolist()) for s in lb.samples]


def test_thresholds_are_options():
    lb = to_labels(hand_coco(), toy_skeleton(), min_keypoints=4, min_area=0, dedup_ratio=0)
    assert lb.inst_ids[lb.samples].tolist() == [20, 10, 11, 12, 13, 14, 15, 16, 17]
    lb = to_labels(hand_coco(), toy_skeleton(), min_keypoints=5, dedup_ratio=10)
    assert lb.inst_ids[lb.samples].tolist() == [20, 10]


def test_dataset_and_raw_paths_agree():
    from posedata.coco import from_coco

    data = hand_coco()
    a = to_labels(data, toy_skeleton())
    b = to_labels(from_coco(copy.deepcopy(data)), toy_skeleton())
    _same(a, b)


def _same(a: L.Labels, b: L.Labels) -> None:
    for name in L.ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.crowd == b.crowd and a.file_names == b.file_names and a.extra == b.extra


def test_unrepresentable_annotations_are_dropped_and_counted():
    data = hand_coco()
    data["annotations"][1]["keypoints"] = data["annotations"][1]["keypoints"][:-3]  # A: wrong length
    data["annotations"][2]["keypoints"][0] = "x"  # B: not a number
    data["annotations"][3]["bbox"] = None  # C
    data["annotations"][4]["image_id"] = 99  # D: dangling
    del data["annotations"][5]["area"]  # E: area from bbox (10 * 100 = 1000 < 1024)
    del data["annotations"][6]["num_keypoints"]  # F: recount 4 < 5
    lb = to_labels(data, toy_skeleton(), min_keypoints=5)
    st_ = lb.extra["stats"]
    assert st_["dropped"]["keypoints not 3*K finite numbers"] == 2
    assert st_["dropped"]["bbox not 4 finite numbers"] == 1
    assert st_["dropped"]["image_id not among the images (or the image has no usable size)"] == 1
    assert st_["area_from_bbox"] == 1 and st_["num_keypoints_recounted"] == 1
    assert lb.inst_ids.tolist() == [20, 14, 15, 16, 17, 24]
    assert lb.area[1] == 1000 and lb.num_keypoints[2] == 4
    assert lb.inst_ids[lb.samples].tolist() == [20]


def openpose18_coco(points: dict[str, tuple[float, float, int]], w: int = 100, h: int = 80) -> dict:
    names = list(S.resolve("openpose18").coco_keypoints)
    kp = []
    for n in names:
        kp += list(points.get(n, (0, 0, 0)))
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": w, "height": h}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 50, 50],
                             "area": 2500, "num_keypoints": sum(v > 0 for _, _, v in points.values()), "keypoints": kp}],
            "categories": [{"id": 1, "name": "person", "keypoints": names}]}


@pytest.mark.parametrize("left, right, neck", [
    ((10, 20, 2), (30, 40, 2), (20, 30, 1)),      # both visible: visible
    ((10, 20, 2), (30, 40, 1), (20, 30, 0)),      # one occluded: occluded
    ((10, 20, 1), (31, 40, 1), (20.5, 30, 0)),    # both occluded: occluded
    ((10, 20, 0), (30, 40, 2), (20, 30, 2)),      # one unlabelled (v=0, coordinates kept): absent
    ((0, 0, 2), (30, 40, 2), (15, 20, 2)),        # clean-up first: a shoulder at (0, 0) is absent, so is the neck
    ((100, 20, 2), (30, 40, 2), (65, 30, 2)),     # a shoulder at x == w is outside: absent
    ((-1, 20, 2), (30, 40, 2), (14.5, 30, 2)),    # outside on the left
])
def test_neck_rule_after_cleanup(left, right, neck):
    sk = S.resolve("openpose18")
    lb = to_labels(openpose18_coco({"left_shoulder": left, "right_shoulder": right, "nose": (5, 5, 2)}), sk,
                   min_keypoints=0, min_area=0)
    k = lb.keypoints[0]
    np.testing.assert_allclose(k[sk.index("neck")], neck)
    assert k[sk.index("nose")].tolist() == [5, 5, 1]
    assert k[sk.index("left_eye"), 2] == 2  # unlabelled


def test_map_keypoints_cleanup_edges():
    sk = toy_skeleton()
    kp = np.array([[[0, 0, 2], [639, 479, 2], [640, 10, 2], [10, 480, 1], [5, 5, 1.5]]], dtype=np.float64)
    out = map_keypoints(kp, np.array([[640, 480]]), sk, np.arange(5))
    assert out[0, :, 2].tolist() == [2, 1, 2, 2, 2]


def test_map_keypoints_of_named_rows_is_the_gathered_map():
    """convert maps validate's stack through row indices (no gathered copy): the same keypoints as
    mapping the gathered rows, across block boundaries and with repeats."""
    from posedata.validate_rules import BLOCK_ROWS

    sk = S.resolve("openpose18")
    rng = np.random.default_rng(3)
    n = BLOCK_ROWS + 700
    kp = np.stack([rng.integers(-5, 700, (n, 17)), rng.integers(-5, 500, (n, 17)), rng.integers(0, 3, (n, 17))],
                  axis=2).astype(np.float64)
    rows = rng.integers(0, n, n + 50)
    wh = rng.integers(300, 641, (len(rows), 2))
    src = sk.source_index(S.resolve("coco17").keypoints)
    assert map_keypoints(kp, wh, sk, src, rows=rows).tobytes() == map_keypoints(kp[rows], wh, sk, src).tobytes()


def test_openpose18_on_real_coco(shared_real):
    path = shared_real / "coco" / "test_coco.json"
    raw = json.loads(path.read_text())
    sk = S.resolve("openpose18")
    src = load_source(path, sk)
    lb = to_labels(src.data, sk, source=str(path), source_sha256=src.sha256)
    names = raw["categories"][0]["keypoints"]
    ls, rs = names.index("left_shoulder"), names.index("right_shoulder")
    by_id = {a["id"]: a for a in raw["annotations"]}
    sizes = {im["id"]: (im["width"], im["height"]) for im in raw["images"]}
    neck = sk.index("neck")
    assert len(lb.inst_ids) == sum(a["num_keypoints"] > 0 for a in raw["annotations"])
    checked = 0
    for i, aid in enumerate(lb.inst_ids.tolist()):
        a = by_id[aid]
        w, h = sizes[a["image_id"]]
        k = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)

        def vis(j, k=k, w=w, h=h):
            x, y, v = k[j]
            if (x == 0 and y == 0) or not (0 <= x < w and 0 <= y < h):
                return 2
            return {2: 1, 1: 0}.get(int(v), 2)

        want_v = 2 if 2 in (vis(ls), vis(rs)) else 1 if vis(ls) == vis(rs) == 1 else 0
        assert lb.keypoints[i, neck, 2] == want_v
        np.testing.assert_allclose(lb.keypoints[i, neck, :2], (k[ls, :2] + k[rs, :2]) / 2, rtol=1e-6)
        # the other 17 come straight from the file, by name
        for n in ("nose", "left_wrist", "right_ankle"):
            j = names.index(n)
            assert lb.keypoints[i, sk.index(n), 2] == vis(j)
        checked += want_v != 2
    assert checked >= 5  # the sample has real necks, not only absent ones
    assert lb.settings["source_sha256"] == src.sha256 and lb.fingerprint == sk.fingerprint


def test_load_source_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    with pytest.raises(InputError, match="invalid JSON") as e:
        load_source(bad)
    assert "line 1" in e.value.where
    bad.write_text("[]")
    with pytest.raises(InputError, match="top level"):
        load_source(bad)
    with pytest.raises(InputError, match="not found"):
        load_source(tmp_path / "missing.json")
    good = tmp_path / "g.json"
    good.write_text(json.dumps(hand_coco()))
    raw, ds, report = load_source(good)  # unpacks as (raw, dataset, report)
    assert raw["images"][0]["id"] == 1 and len(ds.annotations) == 15 and report is None


def test_dedup_screened_equals_plain_loop(monkeypatch):
    """The pair-screened de-duplication decides exactly as the reference's sequential loop,
    including ties at the threshold (integer boxes make exact ties common)."""
    import posedata.convert_samples as C

    rng = np.random.default_rng(5)
    for _ in range(8):
        n = 1500
        rank = np.sort(rng.integers(0, 150, n))
        bbox = rng.integers(0, 60, (n, 4)).astype(np.float64)
        nk, area = rng.integers(0, 10, n), rng.uniform(0, 3000, n)
        ratio = float(rng.choice([0.0, 0.3, 0.5, 1.0]))
        fast, rej = C.select_samples(rank, nk, area, bbox, dedup_ratio=ratio)
        monkeypatch.setattr(C, "_MAX_PAIRS", -1)  # forces the per-image loop
        slow, rej2 = C.select_samples(rank, nk, area, bbox, dedup_ratio=ratio)
        monkeypatch.undo()
        assert np.array_equal(fast, slow) and rej == rej2


def test_dedup_of_crowded_images_equals_plain_loop(monkeypatch):
    """Images with more candidates than _CROWDED are decided against the accepted ones only, not
    by enumerating their pairs: same decisions as the reference's loop, ties included, with
    ordinary images around them."""
    import posedata.convert_samples as C

    rng = np.random.default_rng(11)
    for _ in range(6):
        sizes = [3, C._CROWDED + 1, 1, int(rng.integers(200, 700)), 7, C._CROWDED]
        rank = np.repeat(np.arange(len(sizes)), sizes)
        n = len(rank)
        bbox = rng.integers(0, 40, (n, 4)).astype(np.float64)
        bbox[rng.random(n) < 0.05, 2] *= -1  # a negative width never rejects anyone
        nk, area = rng.integers(3, 10, n), rng.uniform(500, 3000, n)
        ratio = float(rng.choice([0.0, 0.3, 0.5, 1.0]))
        fast, rej = C.select_samples(rank, nk, area, bbox, dedup_ratio=ratio)
        monkeypatch.setattr(C, "_CROWDED", 10**9)
        monkeypatch.setattr(C, "_MAX_PAIRS", -1)  # every image through the reference's loop
        slow, rej2 = C.select_samples(rank, nk, area, bbox, dedup_ratio=ratio)
        monkeypatch.undo()
        assert np.array_equal(fast, slow) and rej == rej2
        assert 0 < rej["dedup"] < n or ratio == 0


def test_load_source_leaves_the_gc_as_it_was(tmp_path):
    import gc

    p = tmp_path / "d.json"
    p.write_text(json.dumps(hand_coco()))
    assert gc.isenabled() and gc.get_freeze_count() == 0
    load_source(p)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        to_labels(load_source(p).raw, toy_skeleton())
        assert not gc.isenabled()
    finally:
        gc.enable()


# ------------------------------------------------------------------ hypothesis
@st.composite
def small_coco(draw):
    n_img = draw(st.integers(1, 4))
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "width": draw(st.integers(20, 200)),
               "height": draw(st.integers(20, 200))} for i in range(n_img)]
    anns = []
    for j in range(draw(st.integers(0, 14))):
        im = draw(st.sampled_from(images))
        w, h = im["width"], im["height"]
        bx, by = draw(st.integers(0, w - 2)), draw(st.integers(0, h - 2))
        bw, bh = draw(st.integers(1, w - bx)), draw(st.integers(1, h - by))
        vs = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=5, max_size=5))
        kp = []
        for v in vs:
            kp += [0, 0, 0] if v == 0 else [draw(st.integers(-5, w + 5)), draw(st.integers(-5, h + 5)), v]
        crowd = draw(st.booleans()) and draw(st.booleans())
        anns.append({"id": j + 1, "image_id": im["id"], "category_id": 1, "iscrowd": int(crowd),
                     "bbox": [bx, by, bw, bh], "area": draw(st.sampled_from([bw * bh, 1023, 1024, 5000])),
                     "num_keypoints": 0 if crowd else sum(v > 0 for v in vs), "keypoints": kp,
                     "segmentation": [[bx, by, bx + bw, by, bx + bw, by + bh]]})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "thing", "keypoints": NAMES, "skeleton": []}]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_coco(), min_kp=st.integers(0, 5), ratio=st.sampled_from([0.0, 0.3, 1.0]))
def test_random_datasets_satisfy_the_rules(data, min_kp, ratio):
    from posedata.coco import from_coco

    sk = toy_skeleton()
    lb = to_labels(data, sk, min_keypoints=min_kp, dedup_ratio=ratio)
    _same(lb, to_labels(from_coco(copy.deepcopy(data)), sk, min_keypoints=min_kp, dedup_ratio=ratio))
    persons = [a for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] != 0]
    assert sorted(lb.inst_ids.tolist()) == sorted(a["id"] for a in persons)
    assert set(lb.image_ids.tolist()) == {a["image_id"] for a in persons}
    assert np.all(np.diff(lb.inst_image) >= 0)  # grouped by image
    assert np.isin(lb.keypoints[:, :, 2], [0, 1, 2]).all()
    absent = lb.keypoints[:, :, 2] == 2
    x, y = lb.keypoints[:, :, 0], lb.keypoints[:, :, 1]
    w, h = lb.widths[lb.inst_image][:, None], lb.heights[lb.inst_image][:, None]
    assert not (~absent & ((x < 0) | (y < 0) | (x >= w) | (y >= h) | ((x == 0) & (y == 0)))).any()
    # the sample rules, checked the slow way
    s = set(lb.samples.tolist())
    accepted: dict[int, list] = {}
    for i in range(len(lb.inst_ids)):
        bx, by, bw, bh = lb.bbox[i].astype(float)
        c = (bx + bw / 2, by + bh / 2)
        ok = lb.num_keypoints[i] >= min_kp and lb.area[i] >= 1024
        near = any(math.dist(c, p) < pw * ratio for p, pw in accepted.get(int(lb.inst_image[i]), []))
        assert (i in s) == (ok and not near)
        if i in s:
            accepted.setdefault(int(lb.inst_image[i]), []).append((c, bw))
    if min_kp == 5 and ratio == 0.3:
        assert len(lwop_records(data)) == len(lb.samples)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 3000) | st.floats(allow_nan=False) | st.text(max_size=3),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                           max_leaves=6)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, 14), key=st.sampled_from(["image_id", "bbox", "area", "num_keypoints", "keypoints",
                                                      "iscrowd", "category_id", "id", "segmentation"]),
       value=json_values, drop=st.booleans())
def test_corrupt_annotations_never_crash(index, key, value, drop):
    """With --skip-checks, convert reaches both writers with data validate flagged: each either converts
    or raises a located InputError, never anything else."""
    data = hand_coco()
    if drop:
        data["annotations"][index].pop(key, None)
    else:
        data["annotations"][index][key] = value
    for convert in (lambda: lwop_records(data), lambda: to_labels(data, toy_skeleton())):
        try:
            convert()
        except InputError as e:
            assert e.where or e.message


# ----------------------------------------------------------------------- CLI
def write(tmp_path, data, name="d.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_cli_success_labels_and_lwop(tmp_path, runner, shared_real):
    src = shared_real / "coco" / "test_coco.json"
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "training samples" in r.output and "wrote" in r.output
    lb = L.load(out)
    assert lb.num_samples == 12 and lb.settings["source"] == str(src)
    assert lb.settings["min_keypoints"] == 5 and len(lb.settings["source_sha256"]) == 64
    out2 = tmp_path / "p.pkl"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out2), "--format", "lwop-pickle",
                            "--images", str(shared_real / "coco")])
    assert r.exit_code == 0, r.output
    assert out2.read_bytes() == pickle.dumps(lwop_records(json.loads(src.read_text())))


def test_cli_thresholds(tmp_path, runner):
    data = hand_coco()
    for a in data["annotations"]:  # make it clean for validate: counts agree with v > 0
        if not a["iscrowd"] and a["num_keypoints"]:
            a["num_keypoints"] = 4
    src = write(tmp_path, data)
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", str(_toy_yaml(tmp_path)), "-o", str(out),
                            "--min-keypoints", "4", "--min-area", "0", "--dedup", "0", "--skip-checks"])
    assert r.exit_code == 0, r.output
    lb = L.load(out)
    assert lb.settings["min_keypoints"] == 4 and lb.settings["dedup_ratio"] == 0
    assert lb.inst_ids[lb.samples].tolist() == [20, 10, 11, 12, 13, 14, 15, 16, 17, 24]


def _toy_yaml(tmp_path):
    p = tmp_path / "toy.yaml"
    p.write_text(toy_skeleton().to_yaml())
    return p


def test_cli_refuses_bad_data_then_skip_checks(tmp_path, runner, shared_real):
    data = json.loads((shared_real / "coco" / "test_coco.json").read_text())
    data["annotations"][0]["image_id"] = 424242  # dangling: a validate error
    src = write(tmp_path, data)
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out)])
    assert r.exit_code == 1, r.output
    assert "V008" in r.output and "nothing written" in r.output
    assert not out.exists()
    # --force only replaces an earlier output: it no longer gets past the data gate
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out), "--force"])
    assert r.exit_code == 1 and not out.exists(), r.output
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out), "--skip-checks"])
    assert r.exit_code == 0, r.output
    assert "despite" in r.output and "--skip-checks" in r.output
    lb = L.load(out)
    assert lb.num_samples == 11 and lb.extra["stats"]["dropped"]


def test_cli_unreadable_input_exit_2(tmp_path, runner):
    src = tmp_path / "broken.json"
    src.write_text('{"images": [1, 2,')
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out)])
    assert r.exit_code == 2
    assert "invalid JSON" in r.output and "Traceback" not in r.output
    assert not out.exists() and not list(tmp_path.glob(".l.npz*"))
    r = runner.invoke(cli, ["convert", str(tmp_path / "missing.json"), "--skeleton", "openpose18", "-o", str(out)])
    assert r.exit_code == 2 and not out.exists()
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "no_such_template", "-o", str(out)])
    assert r.exit_code == 2 and not out.exists()


def test_cli_output_exists_exit_2(tmp_path, runner, shared_real):
    src = shared_real / "coco" / "test_coco.json"
    out = tmp_path / "l.npz"
    out.write_bytes(b"keep me")
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out)])
    assert r.exit_code == 2 and "exists" in r.output
    assert out.read_bytes() == b"keep me"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "openpose18", "-o", str(out), "--force"])
    assert r.exit_code == 0 and L.load(out).num_samples == 12


# ------------------------------------------------------- tool exports, imported in memory
IMPORT_DATA = ROOT / "tests" / "data" / "import"
MOUSE = IMPORT_DATA / "dlc_mouse.yaml"


@pytest.fixture
def wide(monkeypatch):
    """Rich folds table cells at 80 columns; these tests read report lines whole."""
    from posedata import cli as cli_module

    # the private _width: restoring a patched `width` property would pin the old width
    monkeypatch.setattr(cli_module.console, "_width", 300)
    monkeypatch.setattr(cli_module.err_console, "_width", 300)


def _flat(text: str) -> str:
    """CLI output with rich's line folding undone."""
    return " ".join(text.split())


def _same_labels(a: L.Labels, b: L.Labels) -> None:
    """Same training content (settings and provenance aside)."""
    assert a.file_names == b.file_names and a.image_ids.tolist() == b.image_ids.tolist()
    assert a.widths.tolist() == b.widths.tolist() and a.heights.tolist() == b.heights.tolist()
    for f in ("inst_image", "inst_ids", "keypoints", "bbox", "area", "num_keypoints", "samples"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert a.crowd == b.crowd


def test_cli_raw_coco_annotator_export_becomes_labels_in_one_command(tmp_path, runner, wide):
    export = IMPORT_DATA / "coco_annotator_export.json"
    out = tmp_path / "one.npz"
    r = runner.invoke(cli, ["convert", str(export), "--skeleton", "coco17", "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = _flat(r.output)
    assert "a coco-annotator export (recognised by content); imported in memory" in text
    # the import's own report, printed as `posedata import` prints it
    assert "import coco-annotator" in text and "bbox computed from labelled keypoints" in text
    assert "keypoints beyond the category's 17 labelled slots dropped" in text
    lb = L.load(out)
    assert lb.settings["import_format"] == "coco-annotator" and lb.settings["import_detected"] is True
    assert lb.settings["import_options"]["bbox_margin"] == 0.1
    assert lb.settings["source"] == str(export) and len(lb.settings["source_sha256"]) == 64
    # the keypoint-only people (area 0, bbox [0, 0, 0, 0] in the export) are training samples
    assert lb.num_samples == 3 and (lb.area[lb.samples] >= 32 * 32).all()
    # exactly what the two-step route (import, then convert the clean file) gives
    clean = tmp_path / "clean.json"
    assert runner.invoke(cli, ["import", "coco-annotator", str(export), "--skeleton", "coco17",
                               "-o", str(clean)]).exit_code == 0
    two = tmp_path / "two.npz"
    r2 = runner.invoke(cli, ["convert", str(clean), "--skeleton", "coco17", "-o", str(two)])
    assert r2.exit_code == 0, r2.output
    assert "COCO keypoint JSON, converted as it is" in _flat(r2.output)
    assert L.load(two).settings["import_format"] is None
    _same_labels(lb, L.load(two))


@pytest.mark.parametrize("export,skeleton,fmt,extra", [
    ("cvat_images_1_1.xml", "object5", "cvat", []),
    ("cvat_coco_keypoints.json", "object5", "cvat", []),
    ("label_studio_export.json", "object5", "label-studio", []),
    ("dlc_project", str(MOUSE), "deeplabcut", []),
    ("dlc_ma_project", str(MOUSE), "deeplabcut", []),
    ("labelme_project", str(MOUSE), "labelme", []),
    ("yolo_dataset/data.yaml", str(MOUSE), "yolo", ["--category", "mouse"]),
])
def test_cli_every_import_format_converts_directly(tmp_path, runner, export, skeleton, fmt, extra):
    src = IMPORT_DATA / export
    rules = ["--min-keypoints", "1", "--min-area", "1"]
    out = tmp_path / "one.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", skeleton, "-o", str(out), *rules, *extra])
    assert r.exit_code == 0, r.output
    assert f"a {fmt} export (recognised by content)" in _flat(r.output)
    lb = L.load(out)
    assert lb.settings["import_format"] == fmt and lb.num_samples > 0
    # naming the format gives the same labels, and says so
    named = tmp_path / "named.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", skeleton, "-o", str(named), "--from", fmt, *rules, *extra])
    assert r.exit_code == 0 and f"(--from {fmt})" in _flat(r.output)
    assert L.load(named).settings["import_detected"] is False
    _same_labels(lb, L.load(named))
    # and the same as importing to a file first
    clean = tmp_path / "clean.json"
    r = runner.invoke(cli, ["import", fmt, str(src), "--skeleton", skeleton, "-o", str(clean), *extra])
    assert r.exit_code == 0, r.output
    two = tmp_path / "two.npz"
    assert runner.invoke(cli, ["convert", str(clean), "--skeleton", skeleton, "-o", str(two), *rules]).exit_code == 0
    _same_labels(lb, L.load(two))


def test_cli_import_options_reach_the_import(tmp_path, runner, wide):
    export = IMPORT_DATA / "coco_annotator_export.json"
    base, wide = tmp_path / "base.npz", tmp_path / "wide.npz"
    assert runner.invoke(cli, ["convert", str(export), "--skeleton", "coco17", "-o", str(base)]).exit_code == 0
    r = runner.invoke(cli, ["convert", str(export), "--skeleton", "coco17", "-o", str(wide), "--bbox-margin", "0.5",
                            "--drop-unlabelled"])
    assert r.exit_code == 0, r.output
    assert "--drop-unlabelled" in _flat(r.output)  # the import's skip line
    a, b = L.load(base), L.load(wide)
    assert b.settings["import_options"]["bbox_margin"] == 0.5 and b.settings["import_options"]["drop_unlabelled"]
    # boxes the import made from keypoints grow with the margin; boxes the export had do not
    grown = (b.bbox[:, 2] > a.bbox[:, 2]) & (b.bbox[:, 3] >= a.bbox[:, 3])
    assert grown.any() and not grown.all()
    assert b.extra["stats"]["annotations"] == a.extra["stats"]["annotations"] - 1  # the keypoint-less one


def test_cli_from_coco_keeps_the_plain_path_and_hints(tmp_path, runner, wide):
    export = IMPORT_DATA / "coco_annotator_export.json"
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(export), "--skeleton", "coco17", "-o", str(out), "--from", "coco"])
    assert r.exit_code == 1 and not out.exists()
    text = _flat(r.output)
    assert "converted as it is (no import: --from coco)" in text and "nothing written" in text
    assert "`--from coco-annotator` imports it" in text


def test_cli_unrecognised_inputs_exit_2(tmp_path, runner, wide):
    out = tmp_path / "l.npz"
    notes = tmp_path / "notes.txt"
    notes.write_text("scorer but not a csv\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    for args in ([str(notes)], [str(folder)], [str(listing)], [str(folder), "--from", "coco"],
                 [str(IMPORT_DATA / "cvat_images_1_1.xml"), "--from", "no-such-tool"]):
        r = runner.invoke(cli, ["convert", *args, "--skeleton", "object5", "-o", str(out)])
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output and not out.exists()
    r = runner.invoke(cli, ["convert", str(listing), "--skeleton", "object5", "-o", str(out)])
    assert "no import format recognises this file" in _flat(r.output) and "--from" in r.output
    r = runner.invoke(cli, ["convert", str(IMPORT_DATA / "cvat_images_1_1.xml"), "--skeleton", "coco17", "-o", str(out)])
    assert r.exit_code == 2 and "not in skeleton" in _flat(r.output)  # the import's own located error


def test_load_source_routes_and_parses_once(tmp_path, monkeypatch):
    from posedata.formats import builder as importer

    plain = write(tmp_path, hand_coco())
    s = load_source(plain, toy_skeleton())
    assert s.raw is not None and s.import_format is None and s.report is None
    assert s.provenance() == {"import_format": None, "import_detected": None, "import_options": None}
    # a tool export: detection and the reader reuse load_source's parse, never parse again
    parses = []
    real = importer.load_json
    monkeypatch.setattr(importer, "_json_cache", {})
    monkeypatch.setattr(importer, "load_json", lambda p: parses.append(p) or real(p))
    export = tmp_path / "export.json"
    export.write_bytes((IMPORT_DATA / "coco_annotator_export.json").read_bytes())
    s = load_source(export, S.resolve("coco17"))
    assert parses == [] and s.raw is None and s.import_format == "coco-annotator" and s.detected
    assert s.report.instances_written == 5 and s.category_id == s.dataset.categories[0].id
    assert len(s.sha256) == 64
    assert importer._json_cache == {}  # the seeded parse is not kept alive by the importer's cache
    with pytest.raises(ValueError, match="needs the skeleton"):
        load_source(export)


def test_load_source_category_by_name_for_plain_coco(tmp_path):
    data = hand_coco()
    data["categories"][0]["name"] = "Person"
    p = write(tmp_path, data)
    cid = data["categories"][0]["id"]
    assert load_source(p, toy_skeleton(), "person").category_id == cid
    assert load_source(p, toy_skeleton(), str(cid)).category_id == cid
    with pytest.raises(InputError, match="no keypoint categories named 'dog'"):
        load_source(p, toy_skeleton(), "dog")


def test_cli_convert_leaves_the_gc_as_it_was(tmp_path, runner):
    import gc

    src = write(tmp_path, hand_coco())
    for state in (True, False):
        (gc.enable if state else gc.disable)()
        try:
            r = runner.invoke(cli, ["convert", str(src), "--skeleton", str(_toy_yaml(tmp_path)), "-o",
                                    str(tmp_path / f"l{state}.npz"), "--skip-checks"])
            assert r.exit_code == 0, r.output
            assert gc.isenabled() is state and gc.get_freeze_count() == 0
        finally:
            gc.enable()


# ---------------------------------------------------------- never empty silently
def _small_skeleton_set(tmp_path, k: int, n: int, labelled_last: int) -> tuple[Path, Path]:
    """n frames of one k-keypoint animal (a chain), the last keypoint labelled in the first
    `labelled_last` frames only; with its skeleton file."""
    names = [f"p{i}" for i in range(k)]
    sk = {"name": f"chain{k}", "keypoints": names, "limbs": [[names[i], names[i + 1]] for i in range(k - 1)],
          "root": names[0], "flip": [], "sigmas": [0.05] * k}
    skp = tmp_path / f"chain{k}.yaml"
    skp.write_text(json.dumps(sk))
    images, anns = [], []
    for i in range(n):
        kp = []
        for j in range(k):
            kp += [40 + 20 * j, 50 + 3 * i % 7, 2] if (j < k - 1 or i < labelled_last) else [0, 0, 0]
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 200, "height": 120})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "keypoints": kp,
                     "num_keypoints": sum(v > 0 for v in kp[2::3]), "bbox": [30, 30, 20 * k + 20, 60],
                     "area": (20 * k + 20) * 60.0})
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "animal", "keypoints": names}]}
    return write(tmp_path, data), skp


def test_default_min_keypoints_scales_with_the_skeleton():
    from posedata.convert import default_min_keypoints

    got = {n: default_min_keypoints(S.resolve(n)) for n in ("coco17", "openpose18", "hand21", "object5")}
    assert got == {"coco17": 5, "openpose18": 5, "hand21": 5, "object5": 2}


def test_four_keypoint_skeleton_gives_samples_by_default(tmp_path, runner):
    """A 4-keypoint skeleton (the DeepLabCut open-field mouse has 4) used to convert to 0 training
    samples with exit 0: the reference's minimum of 5 labelled keypoints can never be met."""
    src, skp = _small_skeleton_set(tmp_path, 4, 6, 6)
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", str(skp), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert L.load(out).num_samples == 6 and L.load(out).settings["min_keypoints"] == 2


def test_zero_samples_is_exit_1_naming_rule_and_option(tmp_path, runner):
    src, skp = _small_skeleton_set(tmp_path, 4, 6, 6)
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", str(skp), "-o", str(out), "--min-keypoints", "5"])
    assert r.exit_code == 1, r.output
    assert "C002" in r.output and "min_keypoints" in r.output and "--min-keypoints" in r.output
    assert not out.exists()


def test_most_instances_rejected_is_a_warning_naming_the_rule(tmp_path, runner):
    """A 5-keypoint skeleton whose fifth point is labelled in 15 of 55 frames kept 15 samples at
    the reference's minimum of 5, without a word."""
    src, skp = _small_skeleton_set(tmp_path, 5, 55, 15)
    out = tmp_path / "l.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", str(skp), "-o", str(out), "--min-keypoints", "5"])
    assert r.exit_code == 0, r.output
    assert L.load(out).num_samples == 15
    text = " ".join(r.output.split())
    assert "C003" in text and "40 of 55 instance(s) rejected by min_keypoints" in text and "--min-keypoints" in text
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", str(skp), "-o", str(out), "--force"])
    assert r.exit_code == 0 and "C003" not in r.output and L.load(out).num_samples == 55


def _huge_page_advised(a: np.ndarray) -> bool:
    """Whether the mapping holding a carries madvise(MADV_HUGEPAGE) ("hg" in /proc/self/smaps).
    NumPy advises from the first page boundary inside the array, so its last byte is looked up.
    The arrays tested are 64 MB: above glibc's largest mmap threshold (32 MB), so each is a mapping
    of its own, not heap memory an earlier array's advice left marked."""
    addr, inside = a.ctypes.data + a.nbytes - 1, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and not line.startswith("VmFlags"):
                lo, _, hi = head.partition("-")
                try:
                    inside = int(lo, 16) <= addr < int(hi, 16)
                except ValueError:
                    pass
            elif inside and line.startswith("VmFlags:"):
                return "hg" in line.split()
    raise AssertionError("array's mapping not found")


def test_convert_job_allocates_without_huge_page_advice(tmp_path):
    """`posedata convert` makes its arrays without NumPy's huge-page advice (on the bench VM the
    kernel's compaction for 2 MB pages made system time grow 3-6x for 2x the file) and leaves
    NumPy's setting as it found it."""
    import os

    from posedata.convert_job import run_convert

    if not os.path.exists("/proc/self/smaps") or not _huge_page_advised(np.empty(64 << 20, np.uint8)):
        pytest.skip("NumPy gives no huge-page advice here")
    src = tmp_path / "c.json"
    src.write_text(json.dumps(hand_coco()))
    seen = {}

    def step(name):
        seen[name] = _huge_page_advised(np.empty(64 << 20, np.uint8))

    job = run_convert(src, toy_skeleton(), tmp_path / "l.npz", step=step, skip_checks=True)
    assert job.written and seen == {"reading": False, "validating": False, "converting": False, "writing": False}
    assert _huge_page_advised(np.empty(64 << 20, np.uint8))
