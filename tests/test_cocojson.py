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

from posedata import cocojson
from posedata import labels as L
from posedata import skeleton as S
from posedata.cli import cli
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
