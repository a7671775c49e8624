"""validate's column screen (posedata/columns.py, _Validator._screen) against the row-by-row checks.

The screen decides column-wise which annotations the per-row checks would pass without a finding;
every other row still goes through those checks. So findings must be the same, finding for finding
(code, severity, message, JSON path, ids, order), with the screen on and off, on any JSON.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st
from json_strategies import mutated_json
from test_properties import JUNK, PROP, SK, coco_docs, mutated

from posedata import validate as V


def both(doc, **kw) -> tuple[list, list]:
    fast = V.validate_coco(copy.deepcopy(doc), SK, file="x.json", **kw)
    try:
        V._Validator.screen = False
        slow = V.validate_coco(copy.deepcopy(doc), SK, file="x.json", **kw)
    finally:
        V._Validator.screen = True
    return fast, slow


def assert_same(doc, **kw) -> None:
    fast, slow = both(doc, **kw)
    assert not any(f.code == "V099" for f in fast), fast
    assert fast == slow


@PROP
@given(st.one_of(mutated(), coco_docs(defects=True), mutated(coco_docs(defects=True))))
def test_screen_gives_the_row_by_row_findings(doc):
    assert_same(doc)


@PROP
@given(coco_docs(defects=False).flatmap(lambda d: mutated_json(d, max_depth=6)))
def test_screen_gives_the_row_by_row_findings_on_hostile_values(doc):
    assert_same(doc)


FIELDS = ["id", "image_id", "category_id", "iscrowd", "bbox", "area", "num_keypoints", "keypoints", "segmentation"]
# values at the screen's edges: exact ints vs bools and integral floats, magnitudes around 2**53
# (the screen's limit), float32's range and int64's, strings of digits, wrong-length lists
EDGES = st.one_of(JUNK, st.sampled_from([
    True, False, 1.0, 3.0, 0.0, 2**53 - 1, 2**53, -(2**53), 2**63 - 1, 2**63, -(2**63), 3.5e38, -3.5e38, 1e16, "1", [1, 2, 3],
    [1.0, 2.0, 3.0, 4.0], [1, 2, 3, True], [1, 2, 3, 2**53], [1, 2, 3, 10**400], [1, 2, float("nan"), 4], None, 1, 2,
    {"counts": [1], "size": [1, 1]}]))


def apply_edits(records: list[dict], edits: list[tuple[str, object, bool]], data: st.DataObject) -> None:
    """Each edit deletes its field from, or writes its value into, a record drawn from `records`."""
    for key, value, delete in edits:
        rec = records[data.draw(st.integers(0, len(records) - 1))]
        if delete:
            rec.pop(key, None)
        else:
            rec[key] = copy.deepcopy(value)


@PROP
@given(coco_docs(defects=False), st.lists(st.tuples(st.sampled_from(FIELDS), EDGES, st.booleans()), min_size=1, max_size=4),
       st.data())
def test_screen_edges_field_by_field(doc, edits, data):
    anns = doc["annotations"]
    apply_edits(anns, edits, data)
    anns.append(copy.deepcopy(anns[0]))  # a duplicate id too
    assert_same(doc)


@pytest.mark.parametrize("category", [None, 1, (1,), "all", "person", 7])
def test_screen_same_for_every_category_choice(category):
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
           "categories": [{"id": 1, "name": "person", "keypoints": list(SK.coco_keypoints)}, {"id": 2, "name": "ball"}],
           "annotations": [{"id": i, "image_id": 1, "category_id": 1 + i % 2, "iscrowd": 0, "bbox": [1, 2, 30, 40],
                            "area": 1200, "num_keypoints": 1, "keypoints": [5, 6, 2] + [0, 0, 0] * (SK.num_keypoints - 1)}
                           for i in range(6)]}
    assert_same(doc, category_id=category)


def test_ids_read_alike_whatever_their_spelling():
    """3.0 and 3 are the same id to validate (as to from_coco): a later exact 3 after a 3.0 is a
    duplicate, though only the exact one passes the screen."""
    kp = [5, 6, 2] + [0, 0, 0] * (SK.num_keypoints - 1)
    base = {"image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [1, 2, 30, 40], "area": 1200, "num_keypoints": 1,
            "keypoints": kp}
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
           "categories": [{"id": 1, "name": "person", "keypoints": list(SK.coco_keypoints)}],
           "annotations": [dict(base, id=3.0), dict(base, id=3), dict(base, id=4, image_id=1.0), dict(base, id=5)]}
    fast, slow = both(doc)
    assert fast == slow
    assert [(f.code, f.where) for f in fast if f.code < "V010"] == [("V006", "annotations[1].id")]


def test_dict_subclasses_are_checked_row_by_row():
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
           "categories": [{"id": 1, "name": "person", "keypoints": list(SK.coco_keypoints)}],
           "annotations": [OrderedDict(id=1, image_id=1, category_id=1, iscrowd=0, bbox=[1, 2, 30, 40], area=1200,
                                       num_keypoints=0, keypoints=[0] * 3 * SK.num_keypoints),
                           {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [1, 2, 30, 40], "area": 1200,
                            "num_keypoints": 0, "keypoints": [0] * 3 * SK.num_keypoints}]}
    fast, slow = both(doc)
    assert fast == slow and any(f.code == "V006" for f in fast)


def test_well_formed_rows_skip_the_row_by_row_checks(monkeypatch):
    """The screen is what makes validate fast: only rows it cannot pass (here the crowd region,
    whose segmentation is decoded) are checked one by one."""
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
           "categories": [{"id": 1, "name": "person", "keypoints": list(SK.coco_keypoints)}],
           "annotations": [{"id": i, "image_id": 1, "category_id": 1, "iscrowd": int(i == 3), "bbox": [1, 2, 30, 40],
                            "area": 1200.5, "num_keypoints": 1, "segmentation": [[1, 1, 20, 1, 20, 20]],
                            "keypoints": [5, 6.5, 2] + [0, 0, 0] * (SK.num_keypoints - 1)} for i in range(8)]}
    seen = []
    row = V._Validator._annotation_row
    monkeypatch.setattr(V._Validator, "_annotation_row", lambda self, i, *a: (seen.append(i), row(self, i, *a)))
    fast = V.validate_coco(doc, SK)
    assert seen == [3]
    monkeypatch.setattr(V._Validator, "screen", False)
    seen.clear()
    assert V.validate_coco(doc, SK) == fast and seen == list(range(8))


# ------------------------------------------------------------- convert reuses what validate read
def _labels_or_error(doc, validated=None, category=None):
    from posedata.convert import to_labels

    try:
        return to_labels(doc, SK, category, source="x.json", validated=validated)
    except Exception as e:  # noqa: BLE001 - a document validate refuses may stop to_labels; the same way both times
        return type(e).__name__, str(e)


def assert_same_labels(doc, category=None) -> V.Validated:
    import numpy as np

    keep = V.Validated()
    V.validate_coco(doc, SK, file="x.json", category_id=category, keep=keep)
    a, b = _labels_or_error(doc, keep, category), _labels_or_error(doc, None, category)
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert a == b
        return keep
    for name in ("image_ids", "widths", "heights", "inst_image", "inst_ids", "keypoints", "bbox", "area",
                 "num_keypoints", "samples"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True), name
    for name in ("file_names", "crowd", "settings", "extra", "fingerprint"):
        assert getattr(a, name) == getattr(b, name), name
    return keep


@PROP
@given(st.one_of(mutated(), coco_docs(defects=True), mutated(coco_docs(defects=True))))
def test_to_labels_from_what_validate_read_is_the_same(doc):
    assert_same_labels(doc)


@PROP
@given(coco_docs(defects=False), st.lists(st.tuples(st.sampled_from(FIELDS), EDGES, st.booleans()), min_size=1, max_size=3),
       st.data())
def test_to_labels_reuse_edges(doc, edits, data):
    anns = doc["annotations"]
    apply_edits(anns, edits, data)
    assert_same_labels(doc)


def test_a_keypoint_beyond_float_range_is_dropped_either_way():
    """An int keypoint beyond float range (JSON allows any length) passes the type screen, so
    validate's stacked copy holds inf and convert drops the person; reading the dicts again
    dropped nothing but raised OverflowError (found by the property test above)."""
    doc = {"images": [{"id": 1, "file_name": "0001.jpg", "width": 16, "height": 16}],
           "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [],
                            "keypoints": [10**400, 8, 2] + [0] * (3 * SK.num_keypoints - 3), "num_keypoints": 1,
                            "bbox": [7.0, 7.0, 2.0, 2.0], "area": 4.0}],
           "categories": [{"id": 1, "name": "person", "keypoints": list(SK.keypoints)}]}
    assert_same_labels(doc)
    labels = _labels_or_error(doc)
    assert labels.extra["stats"]["dropped"] == {"keypoints not 3*K finite numbers": 1} and len(labels.inst_ids) == 0


def test_to_labels_reuses_validate_columns(monkeypatch):
    """On well-formed data (a crowd region and another category included) convert reads nothing
    from the annotation dicts again: the columns and keypoints are validate's."""
    from posedata import convert as C
    from posedata import convert_columns as columns

    kp = [5, 6, 2, 9, 9, 1] + [0, 0, 0] * (SK.num_keypoints - 2)
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                      {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
           "categories": [{"id": 1, "name": "person", "keypoints": list(SK.coco_keypoints)}, {"id": 2, "name": "ball"}],
           "annotations": [{"id": i, "image_id": 1 + i % 2, "category_id": 1, "iscrowd": 0, "bbox": [1, 2, 30 + i, 40],
                            "area": 1200, "num_keypoints": 2 if i != 4 else 0, "keypoints": kp if i != 4 else [0] * 51}
                           for i in range(6)]
           + [{"id": 9, "image_id": 2, "category_id": 1, "iscrowd": 1, "segmentation": [[1, 1, 9, 1, 9, 9]],
               "bbox": [1, 1, 8, 8], "area": 30},
              {"id": 10, "image_id": 1, "category_id": 2, "bbox": [1, 1, 8, 8]}]}
    stacked = []
    real = columns._stack_numbers
    monkeypatch.setattr(columns, "_stack_numbers", lambda *a: (stacked.append(1), real(*a))[1])
    keep = assert_same_labels(doc)
    assert keep.anns is doc["annotations"] and len(stacked) == 2  # both from the second call, none from the reuse
    stats = C.to_labels(doc, SK, validated=keep).extra["stats"]
    assert stats["dropped"] == {columns.DROP_CROWD: 1, columns.DROP_NO_KEYPOINTS: 1} and stats["other_category"] == 1
    assert len(stacked) == 2


IMAGE_FIELDS = ["id", "file_name", "width", "height"]


@PROP
@given(coco_docs(defects=False), st.lists(st.tuples(st.sampled_from(IMAGE_FIELDS), st.one_of(EDGES, st.sampled_from(
    ["0001.jpg", "0002.jpg", "", 640, 480.0, 0, -3])), st.booleans()), min_size=1, max_size=4), st.data())
def test_screen_edges_of_images(doc, edits, data):
    images = doc["images"]
    images.append(copy.deepcopy(images[0]))  # a duplicate id and file name too
    apply_edits(images, edits, data)
    assert_same(doc)
