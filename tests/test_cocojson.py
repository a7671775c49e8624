"""cocojson.parse_coco: convert's parse of plain COCO, non-crowd polygons left unparsed.

It must give validate and to_labels the values the generic parse gives (findings and label files
equal), and decline every file that is not exactly COCO's shape."""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from test_properties import PROP, coco_docs, mutated
from test_properties import SK as SK17

from posedata import cocojson
from posedata import labels as L
from posedata import skeleton as S
from posedata.cli import cli
from posedata.columns import TypedRecords
from posedata.io import parse_json
from posedata.validate import validate_coco

ROOT = Path(__file__).resolve().parents[1]


def _make_coco(n_images: int, n_annotations: int, seed: int) -> dict:
    spec = importlib.util.spec_from_file_location("bench_convert", ROOT / "bench" / "bench_convert.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_coco(n_images, n_annotations, seed=seed, poly_points=6)


def _odd(data: dict) -> dict:
    """Crowd flags and segmentations of every kind validate and convert look at, all in COCO's nine fields."""
    d = copy.deepcopy(data)
    a = d["annotations"]
    a[0].update(iscrowd=1, segmentation=[[1.5, 2, 30, 2, 30, 40]])  # a crowd polygon
    a[1].update(iscrowd=1, segmentation="not a region")  # V035
    a[2].update(iscrowd=True)  # V004, a bool is no 0/1 int
    a[3].update(iscrowd=0.0)  # V004
    a[4].update(iscrowd=2, segmentation={"counts": [1, 2], "size": [3, 4]})
    a[5].update(iscrowd=1, segmentation={"counts": [5], "size": [1, 1]})  # V036: not the image's size
    a[6].update(num_keypoints=99, segmentation=[])  # V026 on a non-crowd person
    a[7].update(keypoints=a[7]["keypoints"][:-3])  # V021
    a[8].update(id=a[9]["id"])  # V006
    a[10].update(image_id=10**6, category_id="1")  # V008, V004
    return d


def _decoded(raw: dict) -> dict:
    out = dict(raw)
    out["annotations"] = [{k: (msgspec.json.decode(v) if isinstance(v, msgspec.Raw) else v) for k, v in a.items()}
                          for a in raw["annotations"]]
    return out


@pytest.mark.parametrize("odd", [False, True])
def test_same_values_and_findings_as_the_generic_parse(odd):
    data = _make_coco(40, 120, seed=5)
    if odd:
        data = _odd(data)
    blob = json.dumps(data).encode()
    generic, lazy = parse_json(blob), cocojson.parse_coco(blob)
    assert lazy is not None
    raws = [a for a in lazy["annotations"] if isinstance(a["segmentation"], msgspec.Raw)]
    # exactly the annotations whose iscrowd is the int 0 keep their segmentation unparsed
    assert len(raws) == sum(type(a["iscrowd"]) is int and a["iscrowd"] == 0 for a in generic["annotations"]) > 0
    assert _decoded(lazy) == generic
    sk = S.resolve("openpose18")
    assert validate_coco(lazy, sk, file="x.json") == validate_coco(generic, sk, file="x.json")
    if odd:
        codes = {f.code for f in validate_coco(lazy, sk, file="x.json")}
        assert {"V035", "V004", "V036", "V026", "V021", "V006", "V008"} <= codes


@pytest.mark.parametrize("change", [
    lambda d: d["annotations"][3].update(attributes={}),  # a tool's extra field (CVAT)
    lambda d: d["annotations"][3].pop("iscrowd"),  # a missing field: V012 must see it missing
    lambda d: d["annotations"].insert(2, [1, 2]),  # not an object: V002
    lambda d: d.update(extra=1),
    lambda d: d.update(annotations={}),
])
def test_declines_anything_but_plain_coco(change):
    data = _make_coco(5, 12, seed=1)
    change(data)
    assert cocojson.parse_coco(json.dumps(data).encode()) is None
    assert cocojson.parse_coco(b'{"images": [], "annotations": [], "categories": [], "info": NaN}') is None
    assert cocojson.parse_coco(b'{"images": [') is None


def _convert(path: Path, out: Path) -> tuple:
    r = CliRunner().invoke(cli, ["convert", str(path), "--skeleton", "openpose18", "-o", str(out), "--skip-checks"])
    return r.exit_code, r.output


def test_convert_writes_the_same_label_file_either_way(tmp_path, monkeypatch):
    """The command users run: the label file (arrays, header, source copy) is the generic parse's, and
    its source copy is the file's own bytes."""
    p = tmp_path / "coco.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(_odd(_make_coco(40, 120, seed=7))).encode())
    calls = []
    real = cocojson.parse_coco
    monkeypatch.setattr(cocojson, "parse_coco", lambda b: calls.append(1) or real(b))
    lazy = _convert(p, tmp_path / "lazy.npz")
    assert calls and lazy[0] == 0, lazy[1]
    monkeypatch.setattr(cocojson, "parse_coco", lambda b: None)
    generic = _convert(p, tmp_path / "generic.npz")
    assert generic == (lazy[0], lazy[1].replace("lazy.npz", "generic.npz"))
    a, b = np.load(tmp_path / "lazy.npz"), np.load(tmp_path / "generic.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        assert np.array_equal(a[k], b[k]), k
    assert L.load_embedded_source(tmp_path / "lazy.npz") == p.read_bytes()


def test_an_export_detected_in_a_plain_shape_is_imported_from_the_full_parse(tmp_path):
    """coco-annotator's fingerprint on an image: detection answers on the lazy parse, the importer
    then reads the generic one (polygons included)."""
    data = _make_coco(6, 15, seed=2)
    data["images"][0]["dataset_id"] = 1
    p = tmp_path / "export.json"
    p.write_text(json.dumps(data))
    from posedata.convert import load_source

    src = load_source(p, S.resolve("coco17"), polygons=False)
    assert src.import_format == "coco-annotator" and src.raw is None and src.source_bytes is None


def test_deep_nesting_is_declined_not_raised():
    deep = b'{"images": [], "categories": [], "annotations": [], "info": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert cocojson.parse_coco(deep) is None


# ------------------------------------------------------------------ the typed parse
def _same_as_generic(blob: bytes, sk) -> bool:
    """parse_coco's values, findings and labels equal the generic parse's; True when it took the
    typed path (every annotation in COCO's types)."""
    from posedata import convert as CV
    from posedata.validate import Validated

    generic, lazy = parse_json(blob), cocojson.parse_coco(blob)
    if lazy is None:
        return False
    assert _decoded(lazy) == generic
    kept = Validated()
    found = validate_coco(lazy, sk, file="x.json", keep=kept)
    assert found == validate_coco(generic, sk, file="x.json")
    if not any(f.severity == "error" for f in found):
        a = CV.to_labels(lazy, sk, validated=kept)
        b = CV.to_labels(generic, sk)
        for k in ("image_ids", "inst_ids", "keypoints", "bbox", "area", "num_keypoints", "samples"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), k
        assert a.crowd == b.crowd and a.extra == b.extra
    return type(lazy["annotations"]) is TypedRecords


def test_plain_coco_takes_the_typed_parse():
    data = _make_coco(40, 120, seed=3)
    assert _same_as_generic(json.dumps(data).encode(), S.resolve("openpose18"))


def _with_value(key: str, index: int | None, value) -> dict:
    """A small COCO file with one value of one annotation replaced (a list item when index is given)."""
    data = _make_coco(8, 20, seed=4)
    a = data["annotations"][5]
    if index is None:
        a[key] = value
    else:
        a[key][index] = value
    return data


# one value of one annotation that COCO's types exclude: the untyped parse then reads the file
ODD_VALUES = [("keypoints", 4, True), ("keypoints", 0, "12"), ("keypoints", 7, None), ("keypoints", 1, [1]),
              ("bbox", 3, False), ("bbox", 0, "1"), ("iscrowd", None, 0.0),
              ("iscrowd", None, True), ("num_keypoints", None, 5.0), ("id", None, "7"),
              ("category_id", None, None), ("area", None, "12"), ("area", None, [1]), ("keypoints", None, {}),
              ("bbox", None, 7)]


@pytest.mark.parametrize("key, index, value", ODD_VALUES)
def test_a_value_of_another_type_takes_the_untyped_parse(key, index, value):
    data = _with_value(key, index, value)
    assert not _same_as_generic(json.dumps(data).encode(), S.resolve("openpose18"))


@pytest.mark.parametrize("key, index, value", [("keypoints", 2, 2**64), ("keypoints", 3, 10**400),
                                               ("bbox", 1, -(2**70)), ("image_id", None, 2**70), ("id", None, -(2**63)),
                                               ("area", None, 10**30), ("num_keypoints", None, 2**53)])
def test_integers_of_any_size_stay_typed_and_read_alike(key, index, value):
    """Python ints of any size are COCO's type (msgspec reads them exactly): the typed parse keeps
    them, and the checks see the values json.loads gives."""
    data = _with_value(key, index, value)
    assert _same_as_generic(json.dumps(data).encode(), S.resolve("openpose18"))


@given(st.one_of(coco_docs(defects=False), coco_docs(defects=True), mutated(), mutated(coco_docs(defects=True))))
@PROP
def test_typed_or_not_the_parse_gives_the_generic_findings_and_labels(doc):
    try:
        blob = json.dumps(doc, allow_nan=False).encode()
    except ValueError:  # NaN is no JSON: msgspec refuses such a file, tested above
        return
    _same_as_generic(blob, SK17)


# ------------------------------------------------------------------ keypoints as one parsed column
KEYPOINT_TEXTS = [b"[1, -0, 3]", b"[12345678901234567, 2]", b"[1.5,2e3]", b"[]", b"[7]", b"[ 4 ,\n5 ]",
                  b"[-99999999999999999999999999999, 1]", b"[" + b"9" * 400 + b"]", b"[-0.0, 1E2, 0.1]",
                  b"[999999999999999, -999999999999999]", b"[9007199254740993, 2]", b"[370,291,1,0,0,0]",
                  b"[999999999, -999999999, 2147483648, -2147483649, 1000000000]"]


def test_keypoints_are_parsed_into_one_column_with_json_loads_values():
    """Every kind of number list COCO's types allow reads as json.loads's values converted to float64
    (an int beyond float range as inf), row by row, whichever reader (the joined text or msgspec)
    took the row; the records keep the raw text, which decodes to json.loads's lists."""
    import msgspec

    rows = cocojson._number_rows([msgspec.Raw(t) for t in KEYPOINT_TEXTS])
    assert rows is not None
    for i, t in enumerate(KEYPOINT_TEXTS):
        want = []
        for v in json.loads(t):
            try:
                want.append(float(v))
            except OverflowError:
                want.append(float("inf"))
        got = rows.values[rows.start[i]:rows.start[i] + rows.length[i]].astype(np.float64)
        assert got.tobytes() == np.array(want, dtype=np.float64).tobytes(), t  # -0.0 stays -0.0, 0 stays 0.0


@pytest.mark.parametrize("odd", [b"[1, true]", b"[[1, 2]]", b"5", b'[1, "2"]', b"[null]", b"{}", b"[1, {}]"])
def test_keypoints_that_are_not_a_list_of_numbers_decline_the_column(odd):
    import msgspec

    assert cocojson._number_rows([msgspec.Raw(b"[1, 2, 3]"), msgspec.Raw(odd)]) is None


def test_integer_keypoints_take_an_int32_column():
    """Half the memory of int64; an integer of 10 digits or more sends its row to msgspec instead."""
    import msgspec

    rows = cocojson._number_rows([msgspec.Raw(b"[1, -999999999, 3]"), msgspec.Raw(b"[4, 5, 6]")])
    assert rows.values.dtype == np.int32 and rows.width == 3
    assert rows.take(np.array([1, 0]), 3).tolist() == [[4.0, 5.0, 6.0], [1.0, -999999999.0, 3.0]]
    rows = cocojson._number_rows([msgspec.Raw(b"[1, 2, 3]"), msgspec.Raw(b"[4, 5, 4294967297]")])
    assert rows.take(np.array([1]), 3).tolist() == [[4.0, 5.0, 4294967297.0]]


def test_a_coco_file_parses_its_keypoints_into_the_column():
    """No Python list per annotation: the typed parse hands validate one array, whose rows are the
    keypoints json.loads reads (what validate and to_labels then read, test above)."""
    data = _make_coco(30, 90, seed=8)
    data["annotations"][4]["keypoints"][3] = 12.25  # a float: that row read by msgspec
    blob = json.dumps(data).encode()
    lazy = cocojson.parse_coco(blob)
    anns = lazy["annotations"]
    assert type(anns) is TypedRecords and anns.keypoints is not None
    assert all(isinstance(a["keypoints"], msgspec.Raw) for a in anns)
    want = np.array([a["keypoints"] for a in data["annotations"]], dtype=np.float64)
    assert np.array_equal(anns.keypoints.take(np.arange(len(anns)), 51), want)
    cocojson.keypoint_lists(anns, [2, 4])
    assert anns[4]["keypoints"] == data["annotations"][4]["keypoints"]
    assert isinstance(anns[3]["keypoints"], msgspec.Raw)


def test_a_released_column_reads_the_records_text():
    """convert drops the column after validate; validate and to_labels on that parse then read
    each record's text and give the same findings and labels."""
    from posedata import convert as CV

    sk = S.resolve("openpose18")
    data = _make_coco(40, 120, seed=9)
    a = data["annotations"]  # damage of COCO's types only, so the typed parse takes it
    a[0].update(iscrowd=1, segmentation=[[1.5, 2, 30, 2, 30, 40]])
    a[6].update(num_keypoints=99)  # V026
    a[7].update(keypoints=a[7]["keypoints"][:-3])  # V021
    a[8].update(id=a[9]["id"])  # V006
    blob = json.dumps(data).encode()
    generic, lazy = parse_json(blob), cocojson.parse_coco(blob)
    lazy["annotations"].keypoints = None
    found = validate_coco(lazy, sk, file="x.json")
    assert found == validate_coco(generic, sk, file="x.json")
    assert {"V026", "V021", "V006"} <= {f.code for f in found}
    lazy = cocojson.parse_coco(blob)
    lazy["annotations"].keypoints = None
    a, b = CV.to_labels(lazy, sk), CV.to_labels(generic, sk)
    for k in ("image_ids", "inst_ids", "keypoints", "bbox", "area", "num_keypoints", "samples"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k


# ------------------------------------------------------------------ the column read in blocks
def _number_texts():
    """JSON texts of number lists as an exporter may write them: ints of any size (-0, 9 and 10
    digits, beyond 64 bits and beyond float range), floats (-0.0, exponents), empty and one-number
    lists, odd whitespace."""
    number = st.one_of(st.integers(-2**31, 2**31), st.integers(-10**9, 10**9), st.integers(-10**30, 10**30),
                       st.just(-0), st.integers(10**308, 10**309), st.floats(allow_nan=False, allow_infinity=False))
    space = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])

    @st.composite
    def text(draw):
        vals = draw(st.lists(number, max_size=8))
        parts = [("-0" if v == 0 and draw(st.booleans()) and type(v) is int else json.dumps(v)) for v in vals]
        gaps = [draw(space) for _ in range(2 * len(parts) + 2)]
        body = ",".join(g + p + h for g, p, h in zip(gaps[::2], parts, gaps[1::2]))
        return ("[" + gaps[-1] + body + draw(space) + "]").encode()

    return text()


def _loads_floats(texts):
    out = []
    for t in texts:
        for v in json.loads(t):
            try:
                out.append(float(v))
            except OverflowError:
                out.append(float("inf"))
    return np.array(out, dtype=np.float64)


@given(st.lists(_number_texts(), min_size=1, max_size=40), st.integers(1, 7))
@PROP
def test_the_column_read_in_blocks_has_json_loads_values(texts, rows):
    """Whatever the block size (rows per block, the reads crossing block boundaries), every row
    reads as json.loads's numbers converted to float64, -0.0 and 0 apart, and holds its length."""
    whole = cocojson._number_rows([msgspec.Raw(t) for t in texts])
    old, cocojson.ROWS = cocojson.ROWS, rows
    try:
        got = cocojson._number_rows([msgspec.Raw(t) for t in texts])
    finally:
        cocojson.ROWS = old
    want = _loads_floats(texts)
    for r in (got, whole):
        assert r is not None
        assert r.length.tolist() == [len(json.loads(t)) for t in texts]
        assert r.values.astype(np.float64).tobytes() == want.tobytes()
    assert got.values.dtype == whole.values.dtype


@given(st.lists(_number_texts(), min_size=1, max_size=20), st.integers(0, 20),
       st.sampled_from([b"[1, true]", b"[[1, 2]]", b"5", b'[1, "2"]', b"[null]", b"{}", b"[1, {}]", b"[1, [2]]", b"[false]"]),
       st.integers(1, 5))
@PROP
def test_a_non_number_row_in_any_block_declines_the_column(texts, at, odd, rows):
    """A row that is not a list of numbers declines the typed parse in whichever block it falls."""
    texts = list(texts)
    texts.insert(min(at, len(texts)), odd)
    old, cocojson.ROWS = cocojson.ROWS, rows
    try:
        assert cocojson._number_rows([msgspec.Raw(t) for t in texts]) is None
    finally:
        cocojson.ROWS = old


def test_the_column_is_read_without_whole_text_copies():
    """The joined text of every row and its translated copies (3-4 times the column's text, 200 MB
    of fresh pages at 300k annotations) are never made: the read's peak allocation stays near the
    int32 column it returns."""
    import tracemalloc

    rng = np.random.default_rng(5)
    vals = rng.integers(0, 640, (20000, 51))
    vals[:, 2::3] = rng.integers(0, 3, (20000, 17))
    raws = [msgspec.Raw(json.dumps(r).encode()) for r in vals.tolist()]
    text_size = sum(map(len, raws))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        rows = cocojson._number_rows(raws)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert rows.values.dtype == np.int32 and np.array_equal(rows.values.reshape(-1, 51), vals)
    assert peak < rows.values.nbytes + text_size // 4, (peak, rows.values.nbytes, text_size)


def _extreme(seed: int) -> dict:
    """A COCO file whose keypoints take the int32 column's extremes (9 digits, both signs): far
    outside images and boxes, flip pairs of ~2e9 difference."""
    data = _make_coco(20, 60, seed=seed)
    rng = np.random.default_rng(seed)
    for a in data["annotations"][::3]:
        kp = a["keypoints"]
        for j in range(0, 51, 3):
            if kp[j + 2]:
                kp[j] = int(rng.choice([999999999, -999999999, 123456789, -1]))
                kp[j + 1] = int(rng.choice([999999999, -999999999, 0]))
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_int32_stacks_give_the_generic_findings_and_labels(seed):
    """validate's stack from the int32 column (no float64 copy) gives the float64 stack's findings
    and labels, with keypoints at the column's extremes (V025, V033, V070 on ~2e9 x differences)."""
    blob = json.dumps(_extreme(seed)).encode()
    assert _same_as_generic(blob, S.resolve("openpose18"))
    found = validate_coco(parse_json(blob), S.resolve("openpose18"), file="x.json")
    assert {"V025", "V033"} <= {f.code for f in found}


def test_convert_keeps_the_int32_stack_and_drops_the_column_before_the_checks():
    """What convert keeps of validate (the stacks it maps) is the column's int32, 4 bytes a number
    (a float64 copy was 122 MB of fresh pages at 300k annotations), and the parsed column is
    dropped once stacked (another 61 MB that lived through the checks)."""
    from posedata.validate import Validated

    data = _make_coco(30, 90, seed=4)
    data["annotations"][5]["keypoints"][0] = 2.5  # a float column: float64 stacks, as before
    for doc, dtype in ((_make_coco(30, 90, seed=4), np.int32), (data, np.float64)):
        lazy = cocojson.parse_coco(json.dumps(doc).encode())
        kept = Validated()
        validate_coco(lazy, S.resolve("openpose18"), file="x.json", keep=kept)
        (rows, stack), = kept.keypoints.values()
        assert stack.dtype == dtype and lazy["annotations"].keypoints is None
        want = np.array([doc["annotations"][i]["keypoints"] for i in rows.tolist()], dtype=np.float64)
        assert np.array_equal(stack.reshape(len(rows), -1), want)
    lazy = cocojson.parse_coco(json.dumps(data).encode())
    validate_coco(lazy, S.resolve("openpose18"), file="x.json")  # validate alone keeps the column
    assert lazy["annotations"].keypoints is not None


@pytest.mark.parametrize("rows", [1, 7])
def test_the_int32_stack_checked_in_row_blocks_gives_the_one_block_findings(rows):
    """validate's per-keypoint masks are computed block by block; any block size gives the
    findings of one block, on the typed parse's int32 stack and on the generic parse's float64."""
    from posedata import validate_rules

    data = _extreme(5)
    a = data["annotations"]  # damage in COCO's types, so the typed parse (int32 column) takes it
    a[1]["keypoints"][2] = 3  # V023
    a[2]["keypoints"][0:3] = [5, 6, 0]  # V024
    a[4]["num_keypoints"] = 99  # V026
    blob = json.dumps(data).encode()
    sk = S.resolve("openpose18")
    assert cocojson.parse_coco(blob)["annotations"].keypoints.values.dtype == np.int32
    whole = validate_coco(cocojson.parse_coco(blob), sk, file="x.json")
    saved = validate_rules.BLOCK_ROWS
    try:
        validate_rules.BLOCK_ROWS = rows
        assert validate_coco(cocojson.parse_coco(blob), sk, file="x.json") == whole
        assert validate_coco(parse_json(blob), sk, file="x.json") == whole
    finally:
        validate_rules.BLOCK_ROWS = saved
    assert {"V023", "V024", "V025", "V026", "V033", "V070"} <= {f.code for f in whole}
