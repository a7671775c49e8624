"""What makes validate + convert grow linearly with the file, checked against the plain way.

- validate_coco(per_code=N): only the first N findings of each code are built, the rest counted.
  `posedata convert` prints a count and three locations per code, so it asks for three; the
  findings it gets must be exactly the full list's first three of each code, in the same order,
  and the counts the full list's, on any JSON; and what convert prints must be what the full
  list printed.
- row blocks (validate_rules.BLOCK_ROWS): the (N, K) arithmetic of validate's box and flip checks
  and of convert's keypoint mapping runs in blocks of rows; any block size gives the same
  findings and label arrays.
"""
from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from json_strategies import mutated_json
from test_properties import PROP, SK, coco_docs, mutated

from posedata import validate as V
from posedata import validate_rules
from posedata.cli import cli
from posedata.findings import SampledFindings


def first_of_each_code(findings: list, n: int) -> list:
    seen: Counter = Counter()
    out = []
    for f in findings:
        seen[f.code] += 1
        if seen[f.code] <= n:
            out.append(f)
    return out


def assert_sample_of_full(doc, n: int) -> None:
    full = V.validate_coco(copy.deepcopy(doc), SK, file="x.json")
    part = V.validate_coco(copy.deepcopy(doc), SK, file="x.json", per_code=n)
    assert isinstance(part, SampledFindings)
    assert list(part) == first_of_each_code(full, n)
    assert part.counts == dict(Counter(f.code for f in full))
    assert part.severities == {s: sum(f.severity == s for f in full) for s in ("error", "warning", "info")}


@PROP
@given(st.one_of(mutated(), coco_docs(defects=True), mutated(coco_docs(defects=True))), st.integers(0, 3))
def test_per_code_keeps_the_first_findings_of_each_code(doc, n):
    assert_sample_of_full(doc, n)


@PROP
@given(coco_docs(defects=False).flatmap(lambda d: mutated_json(d, max_depth=6)), st.integers(0, 3))
def test_per_code_on_hostile_values(doc, n):
    assert_sample_of_full(doc, n)


def noisy_coco(n_images: int = 6, n_annotations: int = 60, seed: int = 0) -> dict:
    """Random persons: many findings of several codes (swaps, small areas, points outside boxes)."""
    rng = np.random.default_rng(seed)
    # sizes differ per image, and points fall outside the smaller ones (absent in the labels)
    images = [{"id": i + 1, "file_name": f"{i + 1}.jpg", "width": 120 + 20 * i, "height": 60 + 10 * i}
              for i in range(n_images)]
    anns = []
    for j in range(n_annotations):
        kp = np.stack([rng.integers(0, 200, 17), rng.integers(0, 100, 17), rng.choice([0, 1, 2], 17)], axis=1)
        kp[kp[:, 2] == 0, :2] = 0
        anns.append({"id": j + 1, "image_id": int(rng.integers(1, n_images + 1)), "category_id": 1, "iscrowd": 0,
                     "bbox": [10.0, 10.0, float(rng.integers(5, 150)), 60.0], "area": float(rng.integers(100, 3000)),
                     "num_keypoints": int((kp[:, 2] > 0).sum()), "keypoints": kp.reshape(-1).tolist(),
                     "segmentation": [[10, 10, 20, 10, 20, 20]]})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(SK.keypoints)}]}


def test_convert_prints_what_the_full_findings_printed(tmp_path, runner, monkeypatch):
    """A refused convert's summary (counts, first locations, '...') from the sampled findings is
    the one the full list gave; and the --skip-checks warning counts every error."""
    doc = noisy_coco()
    for a in doc["annotations"][:5]:
        a["image_id"] = 999  # five V008 errors: more than the three shown
    doc["annotations"][10]["num_keypoints"] += 1  # one V026 error: printed with its message
    src = tmp_path / "d.json"
    src.write_text(json.dumps(doc))
    full = V.validate_coco(json.loads(src.read_text()), SK)
    assert min(Counter(f.code for f in full).values()) < 3 < max(Counter(f.code for f in full).values())
    args = ["convert", str(src), "--skeleton", "coco17", "-o", str(tmp_path / "l.npz")]

    def outputs() -> tuple[str, str]:
        refused = runner.invoke(cli, args)
        assert refused.exit_code == 1, refused.output
        forced = runner.invoke(cli, [*args, "--skip-checks", "--force"])
        assert forced.exit_code == 0, forced.output
        (tmp_path / "l.npz").unlink()
        return refused.output, forced.output

    sampled = outputs()
    real = V.validate_coco

    def everything(*a, per_code=None, **k):  # the full list, as convert read it before per_code
        fs = real(*a, **k)
        return SampledFindings(fs, Counter(f.code for f in fs), {})

    monkeypatch.setattr(V, "validate_coco", everything)
    assert outputs() == sampled
    assert "6 validation error(s)" in sampled[1]


def labels_of(doc):
    from posedata.convert import to_labels

    keep = V.Validated()
    findings = V.validate_coco(copy.deepcopy(doc), SK, file="x.json", keep=keep)
    try:
        lb = to_labels(doc, SK, source="x.json", validated=keep)
    except Exception as e:  # noqa: BLE001 - a document validate refuses may stop to_labels; the same way each time
        return findings, (type(e).__name__, str(e))
    return findings, {k: getattr(lb, k) for k in ("inst_ids", "inst_image", "keypoints", "bbox", "samples")}


@PROP
@given(st.one_of(mutated(), coco_docs(defects=True), mutated(coco_docs(defects=True))), st.integers(1, 3))
def test_row_blocks_change_nothing(doc, rows):
    whole = labels_of(doc)
    saved = validate_rules.BLOCK_ROWS
    try:
        validate_rules.BLOCK_ROWS = rows
        small = labels_of(doc)
    finally:
        validate_rules.BLOCK_ROWS = saved
    assert small[0] == whole[0]
    if isinstance(whole[1], tuple) or isinstance(small[1], tuple):
        assert small[1] == whole[1]
        return
    for k, a in whole[1].items():
        b = small[1][k]
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True), k


def test_duplicate_ids_name_their_first_row_whichever_rows_the_screen_passes():
    """Ids all exact ints: the screen finds first rows with np.unique; a duplicate on a crowd row
    (checked row by row) and one on a screened row name the same first rows as the plain checks."""
    doc = noisy_coco(n_annotations=8)
    anns = doc["annotations"]
    for j, aid in enumerate([5, 7, 5, 7, 9, 9, 1, 5]):
        anns[j]["id"] = aid
    anns[2]["iscrowd"] = 1
    anns[2]["segmentation"] = [[0, 0, 10, 0, 10, 10]]
    fast = V.validate_coco(copy.deepcopy(doc), SK, file="x.json")
    try:
        V._Validator.screen = False
        slow = V.validate_coco(copy.deepcopy(doc), SK, file="x.json")
    finally:
        V._Validator.screen = True
    dups = [f for f in fast if f.code == "V006"]
    assert [f.where for f in dups] == ["annotations[2].id", "annotations[3].id", "annotations[5].id",
                                       "annotations[7].id"]
    assert [f.message.rsplit(" ", 1)[1] for f in dups] == ["annotations[0]", "annotations[1]", "annotations[4]",
                                                          "annotations[0]"]
    assert fast == slow


def test_row_blocks_on_many_rows():
    """More rows than blocks, images of different sizes (the keypoint clean-up reads each row's
    image size): every block size gives the one-block findings and labels."""
    doc = noisy_coco(n_images=9, n_annotations=200, seed=1)
    whole = labels_of(doc)
    assert not isinstance(whole[1], tuple) and len(whole[1]["inst_ids"]) == 200
    saved = validate_rules.BLOCK_ROWS
    try:
        for rows in (1, 7, 64):
            validate_rules.BLOCK_ROWS = rows
            small = labels_of(doc)
            assert small[0] == whole[0], rows
            for k, a in whole[1].items():
                assert np.array_equal(a, small[1][k], equal_nan=True), (rows, k)
    finally:
        validate_rules.BLOCK_ROWS = saved


# ------------------------------------------------------------------ the image table as arrays
@PROP
@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.floats(allow_nan=True)),
                max_size=30, unique_by=lambda t: t[0]), st.lists(st.booleans(), max_size=30),
       st.lists(st.integers(-2**63, 2**63 - 1), max_size=10))
def test_the_image_table_reads_as_the_dict_it_replaces(rows, by_screen, probes):
    """validate's ImageRows (screened images as arrays, the others merged in) holds the rows of the
    dict {id: (index, width, height)} it replaced, in image order, and answers get() as it did."""
    from posedata.columns import ImageRows

    index = list(range(0, 3 * len(rows), 3))
    screened = [j for j in range(len(rows)) if j < len(by_screen) and by_screen[j]]
    more = [(index[j], rows[j][0], rows[j][1], rows[j][2]) for j in range(len(rows)) if j not in screened]
    table = ImageRows.merged(np.array([index[j] for j in screened], dtype=np.int64),
                             np.array([rows[j][0] for j in screened], dtype=np.int64),
                             np.array([rows[j][1:] for j in screened], dtype=np.float64).reshape(-1, 2), more)
    want = {iid: (i, w, h) for i, (iid, w, h) in zip(index, rows)}
    assert len(table) == len(want)
    assert table.ids.tolist() == list(want)
    assert table.index.tolist() == [v[0] for v in want.values()]
    assert np.array_equal(table.wh, np.array([v[1:] for v in want.values()], np.float64).reshape(-1, 2), equal_nan=True)
    for iid in [r[0] for r in rows] + probes:
        g, w = table.get(iid), want.get(iid)
        assert (g is None) == (w is None) and (g is None or np.array_equal(g, w, equal_nan=True))
        assert g is None or type(g[0]) is int  # an index, as the dict's was


def test_validate_keeps_no_python_objects_per_image():
    """The image table is arrays (index, id, width, height), not a dict of tuples and floats, and
    the images without a person are found with np.isin: validate's peak allocation for 20,000
    images is ~230 bytes an image (the screen's look-ups of ids and names), not ~430."""
    import tracemalloc

    from posedata.io import parse_json

    imgs = [{"license": 1, "file_name": f"{i:012d}.jpg", "coco_url": "", "height": 480, "width": 640,
             "date_captured": "", "flickr_url": "", "id": i + 1} for i in range(20000)]
    doc = parse_json(json.dumps({"images": imgs, "annotations": [], "categories": [
        {"id": 1, "name": "person", "keypoints": list(SK.keypoints)}]}).encode())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        found = V.validate_coco(doc, SK, file="x.json", per_code=3)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert found.counts["V064"] == 20000 and [f.where for f in found if f.code == "V064"] == \
        ["images[0]", "images[1]", "images[2]"]
    assert peak < 320 * 20000, peak / 20000


def test_number_columns_are_read_without_whole_size_copies():
    """A clean column (every row a list of `width` numbers of moderate size) is the array read,
    not zeros plus a masked copy plus np.abs's float64 temporary: peak ~1.3x the result, not 4x."""
    import tracemalloc

    from posedata.columns import float_column, number_rows

    rng = np.random.default_rng(3)
    rows = rng.uniform(-1e3, 1e3, (100000, 4)).tolist()
    for read, arg in ((lambda r: number_rows(r, 4, typed=True), rows), (float_column, [r[0] for r in rows])):
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out, ok = read(arg)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert ok.all() and np.array_equal(out, np.array(arg, dtype=np.float64))
        assert peak < 2 * out.nbytes + ok.nbytes, (peak, out.nbytes)
