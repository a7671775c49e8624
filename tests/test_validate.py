"""posedata validate: one seeded bad file per check code (code AND location), the clean and real
files, --fix, --json, exit codes, image headers, and a never-raise property test."""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_files import exif_jpeg
from json_strategies import json_paths

from posedata import fix as F
from posedata import validate as V
from posedata.cli import cli
from posedata.findings import Finding
from posedata.importer import suggest_importer
from posedata.skeleton import resolve

COCO17 = resolve("coco17")
NAMES = list(COCO17.keypoints)
# frontal person in a unit box, COCO order; left side at larger x
TEMPLATE = [(.5, .08), (.54, .06), (.46, .06), (.58, .08), (.42, .08), (.68, .22), (.32, .22), (.75, .38),
            (.25, .38), (.78, .52), (.22, .52), (.62, .55), (.38, .55), (.62, .75), (.38, .75), (.62, .95),
            (.38, .95)]


def person(aid: int, image_id: int, x: float, y: float, w: float, h: float) -> dict:
    kp = []
    for tx, ty in TEMPLATE:
        kp += [round(x + tx * w), round(y + ty * h), 2]
    return {"id": aid, "image_id": image_id, "category_id": 1, "iscrowd": 0, "keypoints": kp,
            "num_keypoints": 17, "bbox": [x, y, w, h], "area": round(w * h * 0.6, 2), "segmentation": []}


def clean() -> dict:
    return {
        "info": {"description": "test"}, "licenses": [],
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
                   {"id": 2, "file_name": "b.png", "width": 320, "height": 240}],
        "annotations": [person(10, 1, 100, 50, 120, 300), person(11, 1, 400, 100, 100, 250),
                        person(12, 2, 50, 20, 90, 200)],
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(NAMES),
                        "skeleton": [[16, 14], [14, 12], [6, 7]]}],
    }


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def where(findings: list[Finding], code: str) -> list[str]:
    return [f.where for f in findings if f.code == code]


def test_clean_file_has_no_findings_above_info():
    f = V.validate_coco(clean(), COCO17)
    assert [x for x in f if x.severity != "info"] == []


# ---------------------------------------------------------------- seeded faults
def _kp(d, a=0):
    return d["annotations"][a]["keypoints"]


def m_top_not_object(d):
    return [d]


def m_images_missing(d):
    del d["images"]


def m_record_not_object(d):
    d["images"][1] = 5


def m_field_missing(d):
    del d["annotations"][0]["image_id"]


def m_wrong_type(d):
    d["images"][0]["width"] = "640"


def m_dup_image(d):
    d["images"][1]["id"] = 1


def m_dup_ann(d):
    d["annotations"][1]["id"] = 10


def m_dup_cat(d):
    d["categories"].append({"id": 1, "name": "again"})


def m_dangling_image(d):
    d["annotations"][0]["image_id"] = 999


def m_dangling_cat(d):
    d["annotations"][0]["category_id"] = 7


def m_no_kp_cat(d):
    d["categories"][0]["keypoints"] = []


def m_info_type(d):
    d["info"] = ["not", "an", "object"]


def m_iscrowd_missing(d):
    del d["annotations"][0]["iscrowd"]


def m_names(d):
    d["categories"][0]["keypoints"][3] = "left_eer"


def m_dup_names(d):
    d["categories"][0]["keypoints"][4] = "Left Eye"


def m_length(d):
    del _kp(d)[-3:]


def m_nan(d):
    _kp(d)[14] = float("nan")


def m_string(d):
    _kp(d)[14] = "2"


def m_huge(d):
    _kp(d, 1)[6] = 10**400


def m_vis(d):
    _kp(d)[17] = 3
    d["annotations"][0]["num_keypoints"] = 16


def m_v0_xy(d):
    _kp(d)[17] = 0
    d["annotations"][0]["num_keypoints"] = 16


def m_outside_image(d):
    _kp(d, 1)[27] = 650  # annotation 1's left wrist beyond the 640 px image


def m_num_keypoints(d):
    d["annotations"][0]["num_keypoints"] = 3


def m_unused_names(d):
    d["categories"][0]["keypoints"] = NAMES + ["tail"]
    for a in d["annotations"]:
        a["keypoints"] += [0, 0, 0]


def m_bbox_shape(d):
    d["annotations"][0]["bbox"] = [1, 2, 3]


def m_bbox_zero(d):
    d["annotations"][0]["bbox"] = [0, 0, 0, 0]


def m_bbox_outside(d):
    d["annotations"][2]["bbox"] = [50, 20, 300, 200]  # image 2 is 320 wide


def m_far_outside_bbox(d):
    _kp(d)[30], _kp(d)[31] = 600, 400  # right wrist far from its 120x300 box


def m_area(d):
    d["annotations"][0]["area"] = 0


def m_crowd(d):
    d["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10],
                             "area": 100, "segmentation": [], "keypoints": [0] * 51, "num_keypoints": 0})


def m_crowd_rle_size(d):
    # an uncompressed RLE made for a 427-row copy of the 480 x 640 image: validate let it through
    # before V036, and training stopped at the first batch that drew the image
    d["annotations"].append({"id": 98, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10],
                             "area": 100, "segmentation": {"size": [427, 640], "counts": [100, 50, 427 * 640 - 150]},
                             "keypoints": [0] * 51, "num_keypoints": 0})


def m_crowd_rle_counts(d):
    d["annotations"].append({"id": 98, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10],
                             "area": 100, "segmentation": {"size": [480, 640], "counts": [100, 50]},
                             "keypoints": [0] * 51, "num_keypoints": 0})


def m_cat_skeleton(d):
    d["categories"][0]["skeleton"] = [[16, 14], [1, 18]]


def m_dup_file(d):
    d["images"][1]["file_name"] = "a.jpg"


def m_size(d):
    d["images"][0]["height"] = 0


def m_never_labelled(d):
    for a in d["annotations"]:
        a["keypoints"][9:12] = [0, 0, 0]  # left_ear
        a["num_keypoints"] = 16


def m_few(d):
    a = d["annotations"][0]
    for k in range(3, 17):
        a["keypoints"][3 * k:3 * k + 3] = [0, 0, 0]
    a["num_keypoints"] = 3


def m_small(d):
    d["annotations"][0]["area"] = 500


def m_unlabelled(d):
    a = d["annotations"][2]
    a["keypoints"] = [0] * 51
    a["num_keypoints"] = 0


def m_no_person_image(d):
    d["images"].append({"id": 3, "file_name": "c.jpg", "width": 100, "height": 100})


def m_swap(d):
    kp = _kp(d)
    kp[27], kp[30] = kp[30], kp[27]  # left/right wrist x swapped


SEEDED = [
    ("V001", m_top_not_object, "(top level)"),
    ("V001", m_images_missing, "images"),
    ("V002", m_record_not_object, "images[1]"),
    ("V003", m_field_missing, "annotations[0].image_id"),
    ("V004", m_wrong_type, "images[0].width"),
    ("V005", m_dup_image, "images[1].id"),
    ("V006", m_dup_ann, "annotations[1].id"),
    ("V007", m_dup_cat, "categories[1].id"),
    ("V008", m_dangling_image, "annotations[0].image_id"),
    ("V009", m_dangling_cat, "annotations[0].category_id"),
    ("V010", m_no_kp_cat, "categories"),
    ("V011", m_info_type, "info"),
    ("V012", m_iscrowd_missing, "annotations[0].iscrowd"),
    ("V020", m_names, "categories[0].keypoints"),
    ("V020", m_dup_names, "categories[0].keypoints"),
    ("V021", m_length, "annotations[0].keypoints"),
    ("V022", m_nan, "annotations[0].keypoints[14]"),
    ("V022", m_string, "annotations[0].keypoints[14]"),
    ("V022", m_huge, "annotations[1].keypoints[6]"),
    ("V023", m_vis, "annotations[0].keypoints[17]"),
    ("V024", m_v0_xy, "annotations[0].keypoints[15]"),
    ("V025", m_outside_image, "annotations[1].keypoints[27]"),
    ("V026", m_num_keypoints, "annotations[0].num_keypoints"),
    ("V027", m_unused_names, "categories[0].keypoints"),
    ("V030", m_bbox_shape, "annotations[0].bbox"),
    ("V031", m_bbox_zero, "annotations[0].bbox"),
    ("V032", m_bbox_outside, "annotations[2].bbox"),
    ("V033", m_far_outside_bbox, "annotations[0].keypoints[30]"),
    ("V034", m_area, "annotations[0].area"),
    ("V035", m_crowd, "annotations[3].segmentation"),
    ("V036", m_crowd_rle_size, "annotations[3].segmentation"),
    ("V036", m_crowd_rle_counts, "annotations[3].segmentation"),
    ("V040", m_cat_skeleton, "categories[0].skeleton[1]"),
    ("V041", m_dup_file, "images[1].file_name"),
    ("V042", m_size, "images[0].height"),
    ("V060", m_never_labelled, "categories[0].keypoints[3]"),
    ("V061", m_few, "annotations[0].num_keypoints"),
    ("V062", m_small, "annotations[0].area"),
    ("V063", m_unlabelled, "annotations[2].num_keypoints"),
    ("V064", m_no_person_image, "images[2]"),
    ("V070", m_swap, "annotations[0].keypoints[27]"),
]


@pytest.mark.parametrize("code,mutate,loc", SEEDED, ids=[f"{c}-{m.__name__}" for c, m, _ in SEEDED])
def test_seeded_fault_is_found_at_its_location(code, mutate, loc):
    d = clean()
    d2 = mutate(d)
    d = d if d2 is None else d2
    f = V.validate_coco(d, COCO17, file="x.json")
    assert loc in where(f, code), [(x.code, x.where) for x in f]
    hit = next(x for x in f if x.code == code and x.where == loc)
    assert hit.severity == V.CHECKS[code][0]
    assert hit.file == "x.json"
    if loc.startswith("annotations[") and code not in ("V002",):
        i = int(loc.split("[")[1].split("]")[0])
        ann = d["annotations"][i]
        if isinstance(ann.get("id"), int) and code != "V006":
            assert hit.annotation_id == ann["id"]


def test_every_check_code_is_seeded_somewhere():
    seeded = {c for c, _, _ in SEEDED} | set(IMAGE_CODES) | {"V099"}
    assert seeded == set(V.CHECKS)


def test_crowd_rle_that_fits_passes_and_compressed_wrong_size_is_v036():
    from pycocotools import mask as mask_utils

    inside = np.zeros((480, 640), dtype=np.uint8, order="F")
    inside[10:60, 20:90] = 1
    rle = mask_utils.encode(inside)
    rle["counts"] = rle["counts"].decode("ascii")
    d = clean()
    m_crowd_rle_size(d)
    d["annotations"][-1]["segmentation"] = rle
    assert "V036" not in codes(V.validate_coco(d, COCO17))
    d["annotations"][-1]["segmentation"] = dict(rle, size=[240, 320])
    hit = [x for x in V.validate_coco(d, COCO17, file="x.json") if x.code == "V036"]
    assert [(x.where, x.annotation_id, x.image_id) for x in hit] == [("annotations[3].segmentation", 98, 1)]
    assert "(240, 320)" in hit[0].message and "(480, 640)" in hit[0].message


def test_crowd_rle_size_mismatch_stops_validate_convert_and_check(tmp_path, runner):
    d = clean()
    m_crowd_rle_size(d)
    p = tmp_path / "d.json"
    p.write_text(json.dumps(d))
    r = runner.invoke(cli, ["validate", str(p), "--skeleton", "coco17"])
    assert r.exit_code == 1 and "V036" in r.output
    r = runner.invoke(cli, ["convert", str(p), "--skeleton", "coco17", "-o", str(tmp_path / "l.npz")])
    assert r.exit_code == 1 and not (tmp_path / "l.npz").exists()
    r = runner.invoke(cli, ["check", str(p), "--skeleton", "coco17"])
    assert r.exit_code == 1 and "V036" in r.output


def test_requested_category_missing():
    f = V.validate_coco(clean(), COCO17, category_id=5)
    assert where(f, "V010") == ["categories"]


def test_crowd_and_other_categories_are_not_keypoint_checked():
    d = clean()
    d["categories"].append({"id": 2, "name": "car"})
    d["annotations"].append({"id": 50, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25,
                             "iscrowd": 0, "segmentation": []})  # no keypoints at all: fine for a car
    d["annotations"].append({"id": 51, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 50, 50],
                             "area": 900, "segmentation": [[0, 0, 50, 0, 50, 50]], "keypoints": [7] * 5})
    f = V.validate_coco(d, COCO17)
    assert [x for x in f if x.severity != "info"] == []


def test_internal_error_becomes_a_finding(monkeypatch):
    def boom(self, *a):
        raise RuntimeError("boom")

    monkeypatch.setattr(V._Validator, "_flip_check", boom)
    f = V.validate_coco(clean(), COCO17)
    assert where(f, "V099") == ["(top level)"]


# --------------------------------------------------------------------- real data
@pytest.mark.parametrize("template", ["coco17", "openpose18"])
def test_real_coco_sample_has_no_errors(shared_real, template):
    d, f = V.validate_file(shared_real / "coco" / "test_coco.json", resolve(template), images=shared_real / "coco")
    assert [x for x in f if x.severity == "error"] == []
    assert len(d["annotations"]) == 14


# ---------------------------------------------------------------------- images
IMAGE_CODES = ["V050", "V051", "V052", "V053", "V054"]


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    img = np.full((48, 64, 3), 90, np.uint8)
    cv2.imwrite(str(root / "a.jpg"), img)
    cv2.imwrite(str(root / "b.png"), img)
    (root / "garbage.jpg").write_bytes(b"this is not an image at all")
    raw = (root / "a.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(raw[: len(raw) // 2])  # header intact, end marker gone
    (root / "rot.jpg").write_bytes(exif_jpeg(img, 6))
    (tmp_path / "outside.jpg").write_bytes(raw)
    os.symlink(tmp_path / "outside.jpg", root / "link.jpg")
    return root


def _image_data(entries: list[tuple[str, int, int]]) -> dict:
    d = {"images": [], "annotations": [], "categories": clean()["categories"]}
    for i, (fn, w, h) in enumerate(entries):
        d["images"].append({"id": i + 1, "file_name": fn, "width": w, "height": h})
        d["annotations"].append(person(100 + i, i + 1, 2, 2, min(w, 40) - 4, min(h, 40) - 4))
    return d


def test_image_checks(image_dir: Path):
    d = _image_data([("a.jpg", 64, 48), ("b.png", 64, 48), ("missing.jpg", 64, 48), ("../outside.jpg", 64, 48),
                     ("/etc/hostname", 64, 48), ("link.jpg", 64, 48), ("garbage.jpg", 64, 48),
                     ("cut.jpg", 64, 48), ("a.jpg", 60, 48), ("rot.jpg", 64, 48)])
    d["images"][8]["file_name"] = "./a.jpg"  # another name for a.jpg, with a wrong width
    progress = []
    f = V.validate_coco(d, COCO17, images=image_dir, progress=lambda n, t: progress.append((n, t)))
    assert where(f, "V050") == ["images[2].file_name"]
    assert where(f, "V051") == ["images[3].file_name", "images[4].file_name", "images[5].file_name"]
    assert where(f, "V052") == ["images[6].file_name"]
    assert where(f, "V054") == ["images[7].file_name"]
    assert where(f, "V053") == ["images[8].file_name", "images[9].file_name"]
    rot = next(x for x in f if x.code == "V053" and x.where == "images[9].file_name")
    assert "EXIF orientation 6" in rot.message and rot.image_id == 10
    assert progress[-1] == (10, 10)


def test_images_folder_missing(tmp_path: Path):
    f = V.validate_coco(clean(), COCO17, images=tmp_path / "nope")
    assert where(f, "V050") == ["images"]


# ------------------------------------------------------------------------- fix
def broken() -> dict:
    d = clean()
    a0, a1, a2 = d["annotations"]
    a0["keypoints"][15:18] = [a0["keypoints"][15], a0["keypoints"][16], 0]  # V024 (and V026)
    a1["num_keypoints"] = 4  # V026
    a1["bbox"] = [0, 0, 0, 0]  # V031
    a1["area"] = 0  # V034
    del a2["bbox"]  # V030
    del a2["area"]  # V034
    del a2["iscrowd"]  # V012
    return d


def test_fix_repairs_a_copy_and_revalidates_clean():
    d = broken()
    before = copy.deepcopy(d)
    f = V.validate_coco(d, COCO17)
    assert {"V012", "V024", "V026", "V030", "V031", "V034"} <= codes(f)
    fixed, changes = F.fix(d, COCO17, f)
    assert d == before  # input never mutated
    assert {c.code for c in changes} == {"V012", "V024", "V026", "V030", "V031", "V034"}
    after = V.validate_coco(fixed, COCO17)
    assert not codes(after) & set(F.FIXABLE)
    assert [x for x in after if x.severity == "error"] == []
    a1 = fixed["annotations"][1]
    xs = a1["keypoints"][0::3]
    # box = keypoint extent + 10% each side, clipped to the 640x480 image
    assert a1["bbox"][0] == pytest.approx(min(xs) - 0.1 * (max(xs) - min(xs)), abs=0.01)
    assert a1["area"] == pytest.approx(a1["bbox"][2] * a1["bbox"][3], rel=1e-6)
    assert fixed["annotations"][0]["keypoints"][15:18] == [0, 0, 0]
    assert fixed["annotations"][0]["num_keypoints"] == 16


def test_fix_refuses_non_coco():
    with pytest.raises(F.DataError):
        F.fix([1, 2], COCO17, [])


def test_bbox_from_points_clips_and_pads():
    assert F.bbox_from_points([10, 110], [20, 20], 100, 50) == [0.0, 19.0, 100.0, 2.0]
    assert F.bbox_from_points([5], [5], None, None) == [4.0, 4.0, 2.0, 2.0]


# ---------------------------------------------------------------------- importer hint
def test_suggest_importer_coco_annotator():
    assert suggest_importer(clean()) is None
    d = clean()
    d["images"][0]["path"] = "/datasets/x/a.jpg"
    assert suggest_importer(d) == "coco-annotator"
    d = clean()
    d["annotations"][0]["keypoints"] += [5, 5, 2]
    assert suggest_importer(d) == "coco-annotator"
    d = clean()
    d["annotations"][0].update(area=0, bbox=[0, 0, 0, 0])
    assert suggest_importer(d) == "coco-annotator"
    assert suggest_importer("garbage") is None


# ---------------------------------------------------------------------------- CLI
@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich folds long locations at 80 columns; tests read them whole. (The private _width: a
    monkeypatched `width` property would be restored by assigning the width it had then, which
    pins the console at that width for every later test.)"""
    from posedata import cli as cli_module

    monkeypatch.setattr(cli_module.console, "_width", 300)


def _write(tmp_path: Path, d, name="data.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def test_cli_exit_codes(runner, tmp_path: Path):
    ok = _write(tmp_path, clean(), "ok.json")
    r = runner.invoke(cli, ["validate", str(ok), "--skeleton", "coco17"])
    assert r.exit_code == 0, r.output
    assert "OK" in r.output
    bad = _write(tmp_path, broken(), "bad.json")
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17"])
    assert r.exit_code == 1
    assert "V026" in r.output and "annotations[1].num_keypoints" in r.output
    (tmp_path / "notjson.json").write_text("{\"images\": [")
    for args in (["validate", str(tmp_path / "notjson.json"), "--skeleton", "coco17"],
                 ["validate", str(tmp_path / "nothere.json"), "--skeleton", "coco17"],
                 ["validate", str(ok), "--skeleton", "no_such_template"],
                 ["validate", str(ok), "--skeleton", "coco17", "--images", str(tmp_path / "nodir")]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 2, (args, r.output)
        assert "Traceback" not in r.output
    (tmp_path / "bad.yaml").write_text("keypoints: [a, b]\nlimbs: [[a, c]]\nroot: a\n")
    r = runner.invoke(cli, ["validate", str(ok), "--skeleton", str(tmp_path / "bad.yaml")])
    assert r.exit_code == 2


def test_cli_json_is_only_json(runner, tmp_path: Path):
    bad = _write(tmp_path, broken())
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--json"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["counts"]["error"] == sum(f["severity"] == "error" for f in doc["findings"]) > 0
    assert doc["counts"]["by_code"]["V026"] >= 2
    assert {"code": "V031", "severity": "error"}.items() <= next(
        f for f in doc["findings"] if f["code"] == "V031").items()
    assert doc["suggested_importer"] == "coco-annotator"  # area 0 + bbox [0, 0, 0, 0]


def test_cli_fix_writes_copy_and_leaves_input(runner, tmp_path: Path):
    bad = _write(tmp_path, broken())
    raw = bad.read_bytes()
    out = tmp_path / "fixed.json"
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--fix", str(out)])
    assert r.exit_code == 1  # the input has errors
    assert bad.read_bytes() == raw
    assert "V026" in r.output and "re-validated" in r.output
    f = V.validate_coco(json.loads(out.read_text()), COCO17)
    assert not codes(f) & set(F.FIXABLE)
    r = runner.invoke(cli, ["validate", str(out), "--skeleton", "coco17"])
    assert r.exit_code == 0, r.output
    # existing output kept without --force; the input itself is never a --fix target
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--fix", str(out)])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--fix", str(bad), "--force"])
    assert r.exit_code == 2 and bad.read_bytes() == raw
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--fix", str(out), "--force", "--json"])
    doc = json.loads(r.stdout)
    assert doc["fix"]["after"]["error"] == 0 and doc["fix"]["change_counts"]["V026"] == 2


def test_cli_fix_nan_refused_cleanly(runner, tmp_path: Path):
    d = broken()
    d["annotations"][0]["keypoints"][0] = float("nan")
    bad = _write(tmp_path, d)
    out = tmp_path / "fixed.json"
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--fix", str(out)])
    assert r.exit_code == 1 and not out.exists()
    assert "NaN" in r.output


def test_cli_hint_and_images(runner, tmp_path: Path, image_dir: Path):
    d = _image_data([("a.jpg", 64, 48), ("missing.jpg", 64, 48)])
    d["images"][0]["path"] = "/srv/coco-annotator/a.jpg"
    p = _write(tmp_path, d)
    r = runner.invoke(cli, ["validate", str(p), "--skeleton", "coco17", "--images", str(image_dir)])
    assert r.exit_code == 1
    assert "V050" in r.output and "posedata import coco-annotator" in r.output


IMPORT_DATA = Path(__file__).resolve().parent / "data" / "import"


@pytest.mark.parametrize("name,code", [("label_studio_export.json", 1), ("cvat_images_1_1.xml", 2)])
def test_cli_names_the_import_for_other_tools_exports(runner, name, code):
    p = IMPORT_DATA / name
    if not p.exists():
        pytest.skip(f"{p} (the importers' fixture) is not present")
    from posedata.formats import FORMATS

    r = runner.invoke(cli, ["validate", str(p), "--skeleton", "coco17"])
    assert r.exit_code == code
    assert "posedata import " in r.output and any(f"import {f} " in r.output for f in FORMATS), r.output


# ------------------------------------------------------------------ never raises
JUNK = [None, True, False, "x", "", 10**400, -(10**30), float("nan"), float("inf"), -1, 0, 1.5, [], {}, [[[]]],
        {"a": [1, {"b": None}]}, "9" * 200, [float("nan")] * 51, [1] * 51, [0, 0, 3] * 17]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_validate_never_raises_on_mutated_coco(data):
    d = clean()
    for _ in range(data.draw(st.integers(1, 4))):
        paths = list(json_paths(d))
        path = data.draw(st.sampled_from(paths))
        if not path:
            d = copy.deepcopy(data.draw(st.sampled_from(JUNK)))
            continue
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(JUNK)))
    f = V.validate_coco(d, COCO17, category_id=data.draw(st.sampled_from([None, 1, 2])))
    assert isinstance(f, list) and all(isinstance(x, Finding) for x in f)
    assert "V099" not in codes(f), [x.message for x in f if x.code == "V099"]
    assert all(x.code in V.CHECKS and x.severity == V.CHECKS[x.code][0] for x in f)
    suggest_importer(d)
    if isinstance(d, dict) and isinstance(d.get("annotations"), list):
        fixed, _ = F.fix(d, COCO17, f)
        json.dumps(fixed)  # the copy stays JSON-serialisable (NaN allowed here)


def test_deeply_nested_values_do_not_break_validate_or_fix():
    d = clean()
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    d["annotations"][0]["bbox"] = deep
    d["annotations"][0]["extra"] = deep
    f = V.validate_coco(d, COCO17)
    assert "annotations[0].bbox" in where(f, "V030") and "V099" not in codes(f)
    fixed, _ = F.fix(d, COCO17, f)
    assert math.isfinite(fixed["annotations"][0]["area"])


# ------------------------------------------- image sizes as the trainer decodes them (EXIF)
def test_validate_images_accepts_the_rotated_size(tmp_path: Path):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "r.jpg").write_bytes(exif_jpeg(np.full((48, 64, 3), 90, np.uint8), 6))
    ok = V.validate_coco(_image_data([("r.jpg", 48, 64)]), COCO17, images=root)  # as cv2.imread decodes it
    assert "V053" not in codes(ok)
    stored = V.validate_coco(_image_data([("r.jpg", 64, 48)]), COCO17, images=root)
    assert where(stored, "V053") == ["images[0].file_name"]


# ------------------------------------------------ which import repairs a tool's export
IMPORTS = Path(__file__).resolve().parent / "data" / "import"


@pytest.mark.parametrize("export,fmt", [
    ("cvat_images_1_1.xml", "cvat"), ("cvat_coco_keypoints.json", "cvat"), ("label_studio_export.json", "label-studio"),
    ("coco_annotator_export.json", "coco-annotator"), ("dlc_project", "deeplabcut"),
    ("dlc_project/labeled-data/mouse1/CollectedData_Alice.csv", "deeplabcut"), ("labelme_project", "labelme"),
    ("yolo_dataset/data.yaml", "yolo"),
])
def test_suggest_importer_recognises_every_format(export: str, fmt: str):
    p = IMPORTS / export
    assert suggest_importer(None, p) == fmt


def test_suggest_importer_reuses_the_parse_and_leaves_plain_coco_alone(tmp_path: Path, monkeypatch):
    from posedata.formats import builder

    plain = _write(tmp_path, clean())
    assert suggest_importer(json.loads(plain.read_text()), plain) is None
    monkeypatch.setattr(builder, "_json_cache", {})
    parses = []
    real = builder.load_json
    monkeypatch.setattr(builder, "load_json", lambda p: parses.append(p) or real(p))
    export = IMPORTS / "coco_annotator_export.json"
    data = json.loads(export.read_text())
    assert suggest_importer(data, export) == "coco-annotator" and parses == []
    assert builder._json_cache == {}
    assert suggest_importer(None, tmp_path / "missing.json") is None  # a hint never raises


def test_validate_stays_light_to_import():
    import subprocess
    import sys

    code = ("import sys, posedata.validate; heavy = {'posedata.importer', 'cv2', 'PIL', 'torch', 'matplotlib'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("export,fmt", [
    ("cvat_images_1_1.xml", "cvat"), ("dlc_project", "deeplabcut"),
    ("dlc_project/labeled-data/mouse1/CollectedData_Alice.csv", "deeplabcut"), ("labelme_project", "labelme"),
    ("yolo_dataset/data.yaml", "yolo"),
])
def test_cli_non_json_export_names_its_import_exit_2(runner, export: str, fmt: str):
    p = IMPORTS / export
    for extra in ([], ["--json"]):
        r = runner.invoke(cli, ["validate", str(p), "--skeleton", "coco17", *extra])
        assert r.exit_code == 2, r.output
        text = " ".join(r.output.split())
        assert f"this is a {fmt} export" in text and f"run `posedata import {fmt} {p} --skeleton coco17" in text
        assert "invalid JSON" not in text and "Traceback" not in text


def test_cli_unrecognised_folder_and_text_exit_2(runner, tmp_path: Path):
    r = runner.invoke(cli, ["validate", str(tmp_path), "--skeleton", "coco17"])
    assert r.exit_code == 2 and "expected a COCO keypoint JSON file" in " ".join(r.output.split())
    t = tmp_path / "notes.txt"
    t.write_text("hello")
    r = runner.invoke(cli, ["validate", str(t), "--skeleton", "coco17"])
    assert r.exit_code == 2 and "invalid JSON" in r.output  # nothing recognises it: the parse error stands


def _documented_finding_keys() -> list[str]:
    import re
    doc = (Path(__file__).resolve().parent.parent / "docs" / "checks.md").read_text()
    block = re.search(r'"findings": \[\{(.*?)\}\]', doc, re.S)
    assert block, "docs/checks.md no longer states the --json finding keys"
    return re.findall(r'"(\w+)"', block.group(1))


def test_cli_json_every_finding_has_every_documented_key(runner, tmp_path: Path):
    # V007 (no image, no annotation) and V064 (no annotation) used to omit the id keys entirely
    d = clean()
    d["categories"].append(copy.deepcopy(d["categories"][0]))
    d["images"].append({"id": 99, "file_name": "empty.jpg", "width": 64, "height": 48})
    bad = _write(tmp_path, d)
    r = runner.invoke(cli, ["validate", str(bad), "--skeleton", "coco17", "--json"])
    doc = json.loads(r.stdout)
    keys = _documented_finding_keys()
    assert {"code", "image_id", "annotation_id", "where"} <= set(keys)
    seen = {f["code"] for f in doc["findings"]}
    assert {"V007", "V064"} <= seen, seen
    for f in doc["findings"]:
        assert sorted(f) == sorted(keys), f
    v007 = next(f for f in doc["findings"] if f["code"] == "V007")
    assert v007["image_id"] is None and v007["annotation_id"] is None


def test_v070_uses_the_flip_maps_sides_with_openpose_names(shared_real):
    """OpenPose-style names (RShoulder before LShoulder, one pair listed L first in the keypoints)
    gave a V070 swap warning on every correct instance when sides came from keypoint order."""
    coco = json.loads((shared_real / "coco" / "test_coco.json").read_text())
    names = coco["categories"][0]["keypoints"]

    def op(n: str) -> str:
        for side in ("left", "right"):
            if n.startswith(side + "_"):
                return side[0].upper() + n[len(side) + 1:].capitalize()
        return n.capitalize()

    coco["categories"][0]["keypoints"] = [op(n) for n in names]
    order = ["Nose", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee", "RAnkle",
             "LHip", "LKnee", "LAnkle", "REye", "LEye", "LEar", "REar"]
    stems = ["Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Eye", "Ear"]
    from posedata import skeleton as S

    sk = S.from_dict({"name": "op", "keypoints": order, "root": "Nose", "sigmas": [0.05] * 17,
                      "limbs": [["Nose", k] for k in order[1:]], "flip": [["L" + s, "R" + s] for s in stems]})
    v070 = [f for f in V.validate_coco(coco, sk) if f.code == "V070"]
    reference = [f for f in V.validate_coco(json.loads((shared_real / "coco" / "test_coco.json").read_text()),
                                          S.resolve("coco17")) if f.code == "V070"]
    assert len(v070) == len(reference) <= 1
