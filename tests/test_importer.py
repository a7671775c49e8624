"""The import framework: registry, auto-detect, name matching, shared repairs, `posedata import`."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import DataError, InputError
from posedata.formats import FORMATS
from posedata.formats.base import ImportReport
from posedata.formats.builder import (
    DatasetBuilder,
    RawImage,
    RawInstance,
    bboxes_from_keypoints,
    category_limbs,
    keypoint_mapping,
    keypoint_slots,
    path_tails,
    polygon_bbox_area,
)
from posedata.importer import ImportOptions, detect_format, format_module, import_file

DATA = Path(__file__).parent / "data" / "import"
OBJ5 = S.resolve("object5")
COCO17 = S.resolve("coco17")
OP18 = S.resolve("openpose18")


# ------------------------------------------------------------------ registry
def test_every_registered_format_has_the_interface():
    for name in FORMATS:
        mod = format_module(name)
        assert mod.NAME == name and callable(mod.detect) and callable(mod.read)


def test_unknown_format_lists_known_ones():
    with pytest.raises(InputError, match="known: auto, coco-annotator"):
        format_module("supervisely")


@pytest.mark.parametrize("fixture,fmt", [("coco_annotator_export.json", "coco-annotator"),
                                         ("cvat_images_1_1.xml", "cvat"), ("cvat_coco_keypoints.json", "cvat"),
                                         ("label_studio_export.json", "label-studio")])
def test_detect_by_content_not_name(tmp_path, fixture, fmt):
    p = tmp_path / "export.dat"  # the name says nothing
    p.write_bytes((DATA / fixture).read_bytes())
    assert detect_format(p) == fmt


def test_auto_on_unrecognised_file(tmp_path):
    p = tmp_path / "notes.json"
    p.write_text('{"hello": 1}')
    assert detect_format(p) is None
    with pytest.raises(InputError, match="no import format recognises"):
        import_file("auto", p, OBJ5, ImportOptions())
    p.write_bytes(b"\x00\xff" * 50)
    assert detect_format(p) is None


def test_auto_passes_plain_coco_through_with_a_note(tmp_path):
    """Plain COCO (no tool's fingerprints) used to exit 2 under `import auto`."""
    src = json.loads((DATA / "cvat_coco_keypoints.json").read_text())
    for a in src["annotations"]:
        a.pop("attributes", None)  # CVAT's fingerprint: what is left is plain COCO
    p = tmp_path / "plain.json"
    p.write_text(json.dumps(src))
    assert detect_format(p) is None
    r = import_file("auto", p, OBJ5, ImportOptions())
    assert r.report.format.startswith("coco") and any("plain COCO" in w for w in r.report.warnings)
    # the same reading as the file's own tool reader (here CVAT's COCO): same instances, same keypoints
    ref = import_file("cvat", DATA / "cvat_coco_keypoints.json", OBJ5, ImportOptions())
    assert [a.id for a in r.dataset.annotations] == [a.id for a in ref.dataset.annotations] == [1, 2, 4]
    for a, b in zip(r.dataset.annotations, ref.dataset.annotations, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


# -------------------------------------------------------------- name matching
def test_mapping_is_by_name_case_and_separator_tolerant():
    names = ["Bottom-Left", "CENTER", "top right", "Top_Left", "bottom.right"]
    m = keypoint_mapping(names, OBJ5)
    assert [names[i] for i in m] == ["CENTER", "Top_Left", "top right", "bottom.right", "Bottom-Left"]


def test_mapping_errors_list_unknown_and_missing():
    with pytest.raises(InputError) as e:
        keypoint_mapping(["center", "top_left", "top_right", "bottom_right", "handle"], OBJ5, file="f", where="w")
    assert "['handle']" in e.value.message and "['bottom_left']" in e.value.message
    assert (e.value.file, e.value.where) == ("f", "w")
    with pytest.raises(InputError, match="repeat"):
        keypoint_mapping(["center", "Center", "top_left", "top_right", "bottom_right", "bottom_left"], OBJ5)


def test_mapping_with_a_source_order_and_derived_keypoint():
    """openpose18 carries COCO's 17 names as its source order and a derived neck: the export is
    matched to the 17, and the category's limbs leave out every limb touching the neck."""
    src = list(OP18.coco_keypoints)
    assert len(src) == 17 and "neck" not in src
    m = keypoint_mapping(list(reversed(src)), OP18)
    assert m.tolist() == list(range(16, -1, -1))
    limbs = category_limbs(OP18)
    neck_limbs = sum("neck" in OP18.limb_names(i) for i in range(OP18.num_limbs))
    assert len(limbs) == OP18.num_limbs - neck_limbs
    assert all(1 <= a <= 17 and 1 <= b <= 17 for a, b in limbs)
    assert keypoint_slots(OP18)["left_shoulder"] == src.index("left_shoulder")


# -------------------------------------------------------------------- boxes
def test_bbox_from_keypoints_margin_clip_and_single_point():
    kps = np.array([[[10, 20, 2], [30, 60, 1], [0, 0, 0]],
                    [[5, 5, 2], [0, 0, 0], [0, 0, 0]],
                    [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
                    [[99, 97, 2], [61, 51, 2], [0, 0, 0]]], float)
    sizes = np.array([[100, 100]] * 4)
    b, ok = bboxes_from_keypoints(kps, sizes, 0.1)
    assert ok.tolist() == [True, True, False, True]
    assert b[0].tolist() == [8, 16, 24, 48]
    assert b[1].tolist() == [4.5, 4.5, 1, 1]  # a lone point still gets a 1 px box
    assert b[3].tolist() == pytest.approx([57.2, 46.4, 42.8, 53.6])  # clipped at the image edge


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (6, 4, 3), elements=st.floats(-50, 250)), st.floats(0, 1))
def test_bbox_vectorised_equals_per_instance(kps, margin):
    kps[:, :, 2] = np.round(np.abs(kps[:, :, 2])) % 3
    sizes = np.array([[200, 150]] * 6)
    b, ok = bboxes_from_keypoints(kps, sizes, margin)
    for n in range(6):
        one, ok1 = bboxes_from_keypoints(kps[n:n + 1], sizes[:1], margin)
        assert ok1[0] == ok[n] and np.allclose(one[0], b[n])
        if ok[n]:
            assert b[n, 0] >= 0 and b[n, 1] >= 0 and b[n, 0] + b[n, 2] <= 200 + 1e-6 and b[n, 1] + b[n, 3] <= 150 + 1e-6
            lab = kps[n, :, 2] > 0
            inside = (kps[n, lab, 0] >= 0) & (kps[n, lab, 0] <= 200) & (kps[n, lab, 1] >= 0) & (kps[n, lab, 1] <= 150)
            xs, ys = kps[n, lab, 0][inside], kps[n, lab, 1][inside]
            assert np.all(xs >= b[n, 0] - 0.01) and np.all(xs <= b[n, 0] + b[n, 2] + 0.01)
            assert np.all(ys >= b[n, 1] - 0.01) and np.all(ys <= b[n, 1] + b[n, 3] + 0.01)


def test_polygon_bbox_area():
    (box, area) = polygon_bbox_area([[0, 0, 10, 0, 10, 5, 0, 5], [20, 20, 22, 20, 22, 22]])
    assert box == (0, 0, 22, 22) and area == 50 + 2
    assert polygon_bbox_area({"counts": "x", "size": [2, 2]}) is None
    assert polygon_bbox_area([[0, 0, 1]]) is None


def test_path_tails():
    assert path_tails("/datasets/walkers/a/b.jpg") == ["datasets/walkers/a/b.jpg", "walkers/a/b.jpg", "a/b.jpg", "b.jpg"]
    assert path_tails("C:\\data\\x\\y.png") == ["data/x/y.png", "x/y.png", "y.png"]
    assert path_tails("../../etc/passwd")[-1] == "passwd"


# ------------------------------------------------------------------ builder
def _builder(**kw) -> DatasetBuilder:
    return DatasetBuilder(OBJ5, ImportOptions(**kw), ImportReport("test", "t"), "t.json")


def _kps(*pts) -> np.ndarray:
    k = np.zeros((5, 3))
    for i, (x, y) in enumerate(pts):
        k[i] = (x, y, 2)
    return k


def test_builder_reads_sizes_from_images_and_errors_on_missing(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((30, 40, 3), np.uint8))
    b = _builder(images=tmp_path)
    b.add_image(RawImage(key=1, file_name="a.png"))
    b.add_instance(RawInstance(1, _kps((5, 5), (20, 25)), source_id=7))
    r = b.build()
    assert (r.dataset.images[0].width, r.dataset.images[0].height) == (40, 30)
    assert r.report.repairs["image width/height read from the image file"] == 1
    b = _builder(images=tmp_path)
    b.add_image(RawImage(key=1, file_name="gone.png", where="images[0]"))
    b.add_instance(RawInstance(1, _kps((5, 5))))
    with pytest.raises(DataError) as e:  # the data's error (exit 1), as validate's V050
        b.build()
    assert "gone.png" in e.value.message and e.value.where == "images[0]"
    b = _builder()
    b.add_image(RawImage(key=1, file_name="a.png", where="images[0]"))
    b.add_instance(RawInstance(1, _kps((5, 5))))
    with pytest.raises(InputError, match="pass --images"):
        b.build()


def test_builder_refuses_paths_outside_the_images_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "secret.png"), np.zeros((3, 3, 3), np.uint8))
    b = _builder(images=tmp_path / "imgs")
    b.add_image(RawImage(key=1, file_name="../secret.png", width=3, height=3, where="images[0]"))
    b.add_instance(RawInstance(1, _kps((1, 1))))
    with pytest.raises(DataError, match="not found"):  # never looked up outside the root: missing, as V050
        b.build()


def test_builder_repairs_boxes_visibility_and_ids():
    b = _builder()
    b.add_image(RawImage(key="x", file_name="a.jpg", width=100, height=80))
    b.add_instance(RawInstance("x", _kps((10, 10), (50, 40)), bbox=[-5, -5, 200, 50], area=0, source_id="s1"))
    k = _kps((10, 10))
    k[1] = (7, 8, 0)  # v=0 with coordinates
    k[2] = (np.nan, 3, 2)  # labelled without a usable position
    b.add_instance(RawInstance("x", k, source_id="s2"))
    b.add_instance(RawInstance("x", None, segmentation=[[0, 0, 10, 0, 10, 10]], source_id="s3"))
    b.add_instance(RawInstance("x", None, source_id="s4"))  # nothing to place it by
    b.add_instance(RawInstance("nope", _kps((1, 1)), source_id="s5"))
    r = b.build()
    rep = r.report
    anns = r.dataset.annotations
    assert [a.id for a in anns] == [1, 2, 3] and r.dataset.images[0].id == 1
    assert anns[0].bbox == (0, 0, 100, 45) and anns[0].area == 4500
    assert rep.repair_examples["bbox clipped to the image"] == ["s1"]
    assert anns[1].keypoints[1].tolist() == [0, 0, 0] and anns[1].keypoints[2].tolist() == [0, 0, 0]
    assert anns[1].num_keypoints == 1 and anns[1].bbox == (9.5, 9.5, 1, 1)
    assert anns[2].bbox == (0, 0, 10, 10) and anns[2].area == 50 and anns[2].num_keypoints == 0
    assert rep.skip_examples["no usable bbox, labelled keypoint or polygon to place the instance"] == ["s4"]
    assert rep.skip_examples["annotation refers to an image id that is not in the export"] == ["s5"]
    assert rep.repairs["unlabelled keypoint (v=0) with coordinates set to (0, 0, 0)"] == 1
    assert rep.repairs["labelled keypoint without finite coordinates set to unlabelled"] == 1


# ---------------------------------------------------------------------- CLI
def _images(root: Path) -> Path:
    for rel in ("img_0001.jpg", "session2/img_0002.jpg", "img_0003.jpg", "img_0004.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), np.zeros((240, 320, 3), np.uint8))
    return root


def test_cli_import_writes_valid_coco_and_reports(runner, tmp_path):
    out = tmp_path / "out.json"
    imgs = _images(tmp_path / "images")
    r = runner.invoke(cli, ["import", "auto", str(DATA / "coco_annotator_export.json"), "--skeleton", "coco17",
                            "-o", str(out), "--images", str(imgs)])
    assert r.exit_code == 0, r.output
    assert "bbox computed from" in r.output and "101, 103" in r.output
    assert "image with no annotations" in r.output and "OK wrote" in r.output
    data = json.loads(out.read_text())
    assert data["categories"][0]["keypoints"] == list(COCO17.coco_keypoints)
    # an existing output is kept without --force
    r = runner.invoke(cli, ["import", "auto", str(DATA / "coco_annotator_export.json"), "--skeleton", "coco17",
                            "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output


def test_cli_validation_failure_writes_nothing_unless_asked(runner, tmp_path):
    """object5's bottom_left is never labelled in this export: validate's V060 error -> exit 1."""
    data = json.loads((DATA / "label_studio_export.json").read_text())
    for t in data:
        for a in t["annotations"]:
            a["result"] = [r for r in a["result"] if r.get("value", {}).get("keypointlabels") != ["Bottom Left"]]
    src = tmp_path / "ls.json"
    src.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    r = runner.invoke(cli, ["import", "label-studio", str(src), "--skeleton", "object5", "-o", str(out)])
    assert r.exit_code == 1 and "V060" in r.output and "not" in r.output and not out.exists()
    r = runner.invoke(cli, ["import", "label-studio", str(src), "--skeleton", "object5", "-o", str(out),
                            "--write-invalid"])
    assert r.exit_code == 1 and out.exists()


@pytest.mark.parametrize("fixture,fmt", [("coco_annotator_export.json", "coco-annotator"),
                                         ("cvat_images_1_1.xml", "cvat"),
                                         ("label_studio_export.json", "label-studio")])
def test_cli_broken_inputs_exit_2_and_write_nothing(runner, tmp_path, fixture, fmt):
    text = (DATA / fixture).read_text()
    out = tmp_path / "out.json"
    skel = "coco17" if fmt == "coco-annotator" else "object5"
    cases = {
        "truncated": text[: len(text) // 2],
        "wrong structure": "[]" if fmt != "label-studio" else '{"images": []}',
        "unknown names": text.replace("Top Left", "Grip").replace("Left Eye", "Left Eyebrow"),
    }
    if fmt == "label-studio":  # a name outside the skeleton is skipped and counted; none known is an error
        tasks = json.loads(text)
        for t in tasks:
            for a in t["annotations"]:
                for res in a["result"]:
                    if res.get("type") == "keypointlabels":
                        res["value"]["keypointlabels"] = ["Grip"]
        cases["unknown names"] = json.dumps(tasks)
    for why, body in cases.items():
        src = tmp_path / f"in{fixture[-5:]}"
        src.write_text(body)
        r = runner.invoke(cli, ["import", fmt, str(src), "--skeleton", skel, "-o", str(out)])
        assert r.exit_code == 2, (why, r.output)
        assert "error:" in r.output and str(src) in r.output.replace("\n", ""), (why, r.output)
        assert "Traceback" not in r.output and not out.exists(), why
    # images missing: an empty images folder is the data's error, as validate's V050 (exit 1, not 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(cli, ["import", fmt, str(DATA / fixture), "--skeleton", skel, "-o", str(out),
                            "--images", str(empty)])
    assert r.exit_code == 1 and "V050" in r.output and "not found under --images" in r.output and not out.exists()


def test_cli_never_overwrites_its_input(runner, tmp_path):
    src = tmp_path / "export.json"
    src.write_bytes((DATA / "label_studio_export.json").read_bytes())
    r = runner.invoke(cli, ["import", "auto", str(src), "--skeleton", "object5", "-o", str(src), "--force"])
    assert r.exit_code == 2 and "inputs are never replaced" in r.output
    assert src.read_bytes() == (DATA / "label_studio_export.json").read_bytes()


# ------------------------------------------------- one image-size reader, EXIF as decoded
def _jpeg_exif_orientation(img: np.ndarray, orientation: int) -> bytes:
    """cv2's JPEG with an APP1 Exif segment (IFD0: one orientation entry) inserted by hand."""
    import struct

    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    body = b"Exif\x00\x00" + tiff
    raw = buf.tobytes()
    return raw[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + raw[2:]


def test_sizes_read_from_files_are_the_decoded_rotated_sizes(tmp_path):
    import posedata.formats.builder as importer_module

    assert not hasattr(importer_module, "image_size")  # images.image_header is the only reader
    p = tmp_path / "phone.jpg"
    p.write_bytes(_jpeg_exif_orientation(np.zeros((30, 40, 3), np.uint8), 6))
    decoded = cv2.imread(str(p), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (40, 30)  # cv2.imread applies the orientation: 30 wide, 40 high
    b = _builder(images=tmp_path)
    b.add_image(RawImage(key=1, file_name="phone.jpg"))
    b.add_instance(RawInstance(1, _kps((5, 5), (25, 35)), source_id=7))
    r = b.build()
    assert (r.dataset.images[0].width, r.dataset.images[0].height) == (30, 40)
    # an export that states the stored (unrotated) size is kept but warned about
    b = _builder(images=tmp_path)
    b.add_image(RawImage(key=1, file_name="phone.jpg", width=40, height=30))
    b.add_instance(RawInstance(1, _kps((5, 5), (25, 25)), source_id=7))
    r = b.build()
    assert any("says 40x30 but the file is 30x40" in w for w in r.report.warnings)


def test_unreadable_image_is_a_located_input_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    b = _builder(images=tmp_path)
    b.add_image(RawImage(key=1, file_name="bad.png"))
    b.add_instance(RawInstance(1, _kps((5, 5))))
    with pytest.raises(InputError) as e:
        b.build()
    assert e.value.file == str(tmp_path / "bad.png")


def test_known_json_serves_a_parse_and_forgets_it(tmp_path, monkeypatch):
    from posedata.formats import builder as importer_module

    monkeypatch.setattr(importer_module, "_json_cache", {})
    p = tmp_path / "x.json"
    p.write_text('{"a": 1}')
    before = importer_module.read_json(p)  # a real parse, cached
    mine = {"already": "parsed"}
    with importer_module.known_json(p, mine):
        assert importer_module.read_json(p) is mine
    assert importer_module.read_json(p) is before  # the earlier entry is back, the seeded one gone
    assert all(v is not mine for v in importer_module._json_cache.values())


OPENFIELD_SKELETON = """name: mouse4
keypoints: [snout, leftear, rightear, tailbase]
limbs: [[snout, leftear], [snout, rightear], [snout, tailbase]]
root: snout
flip: [[leftear, rightear]]
sigmas: [0.05, 0.05, 0.05, 0.05]
"""


def test_cli_import_counts_the_num_keypoints_it_adds(runner, tmp_path, shared_real):
    """DeepLabCut's open-field example: the import adds num_keypoints to its 20 instances; the
    repairs table used to leave that out."""
    sk = tmp_path / "mouse4.yaml"
    sk.write_text(OPENFIELD_SKELETON)
    src = shared_real / "deeplabcut-openfield"
    out = tmp_path / "out.json"
    r = runner.invoke(cli, ["import", "deeplabcut", str(src), "--skeleton", str(sk), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["written"] and out.exists() and doc["report"]["instances_written"] == 20
    assert doc["report"]["repairs"]["num_keypoints added (the number of labelled keypoints; the export has none)"] == 20
    r = runner.invoke(cli, ["import", "deeplabcut", str(src), "--skeleton", str(sk), "-o", str(out), "--force"])
    assert r.exit_code == 0 and "num_keypoints added" in r.output


def test_cli_import_report_groups_findings_by_code_all_with_json(runner, tmp_path):
    """30 persons with two labelled points each: 30 identical V061 findings, printed as one row
    (count and first locations; they used to be printed row by row); --json lists every one."""
    def kp(i: int) -> list[int]:  # two neighbouring keypoints, every keypoint labelled somewhere
        k = [0] * 51
        k[3 * (i % 17): 3 * (i % 17) + 3], k[3 * ((i + 1) % 17): 3 * ((i + 1) % 17) + 3] = [10, 10, 2], [14, 10, 2]
        return k

    data = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 64} for i in range(1, 31)],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "keypoints": kp(i), "num_keypoints": 2,
                             "bbox": [5, 5, 20, 20], "area": 400, "iscrowd": 0} for i in range(1, 31)],
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.coco_keypoints), "skeleton": []}]}
    src = tmp_path / "plain.json"
    src.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    r = runner.invoke(cli, ["import", "auto", str(src), "--skeleton", "coco17", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert len([f for f in doc["findings"] if f["code"] == "V061"]) == doc["counts"]["by_code"]["V061"] == 30
    r = runner.invoke(cli, ["import", "auto", str(src), "--skeleton", "coco17", "-o", str(out), "--force"],
                      terminal_width=200)
    assert r.exit_code == 0, r.output
    assert r.output.count("V061") == 1 and " 30 " in r.output.split("V061")[1].split("\n")[0]
    # a few locations per code (V061, V062: 30 each), not sixty rows
    assert r.output.count("annotations[") == 3 * len(doc["counts"]["by_code"]) == 6
