"""CVAT import: "CVAT for images 1.1" XML skeletons and "COCO Keypoints 1.0", on hand-made exports."""
from __future__ import annotations

import itertools
import json
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import skeleton as S
from posedata.errors import DataError, InputError, PosedataError
from posedata.formats import cvat
from posedata.importer import ImportOptions, detect_format, import_file
from posedata.validate import validate_coco

DATA = Path(__file__).parent / "data" / "import"
XML = DATA / "cvat_images_1_1.xml"
COCO = DATA / "cvat_coco_keypoints.json"
OBJ5 = S.resolve("object5")


def _kp(ann: dict, name: str) -> list:
    j = OBJ5.coco_keypoints.index(name)
    return ann["keypoints"][3 * j: 3 * j + 3]


def _xml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / f"a{next(_counter)}.xml"
    p.write_text(text)
    return p


_counter = itertools.count()


def test_both_exports_detected_as_cvat():
    assert detect_format(XML) == "cvat"
    assert detect_format(COCO) == "cvat"
    assert cvat.detect(DATA / "coco_annotator_export.json") is False


def test_xml_visibility_outside_occluded_visible():
    out = import_file("cvat", XML, OBJ5, ImportOptions()).dataset.to_coco()
    a1, a2, a3 = out["annotations"]
    assert _kp(a1, "center") == [55.2, 50.33, 2]
    assert _kp(a1, "top_right") == [88.1, 18.42, 1]  # occluded="1"
    assert _kp(a2, "top_right") == [0, 0, 0]  # outside="1": not labelled, coordinates dropped
    assert _kp(a2, "bottom_right") == [174, 124, 1]
    assert a1["num_keypoints"] == 5 and a2["num_keypoints"] == 4
    # image 1 lists its points in another order: matched by label, not position
    assert _kp(a3, "top_left") == [40, 30, 2] and _kp(a3, "center") == [70, 60, 2]


def test_xml_grouped_box_gives_bbox_else_keypoints():
    r = import_file("cvat", XML, OBJ5, ImportOptions())
    a1, a2, _ = r.dataset.to_coco()["annotations"]
    assert a1["bbox"] == pytest.approx([18.4, 12.1, 74.35, 75.9])
    assert r.report.repairs["bbox taken from the <box> in the same group"] == 1
    assert a2["bbox"] == pytest.approx([120.1, 71.1, 58.8, 58.8])  # keypoints 125..174 x 76..125, margin 0.1
    assert a2["area"] == pytest.approx(58.8 * 58.8)


def test_xml_other_shapes_skipped_and_empty_images():
    r = import_file("cvat", XML, OBJ5, ImportOptions())
    assert r.report.skipped["<polygon> shape with label 'bench' (not skeleton 'tool')"] == 1
    assert [im.file_name for im in r.dataset.images] == ["tool_01.jpg", "tool_02.jpg"]
    keep = import_file("cvat", XML, OBJ5, ImportOptions(keep_empty=True))
    assert [im.file_name for im in keep.dataset.images] == ["tool_01.jpg", "tool_02.jpg", "tool_03.jpg"]
    assert r.dataset.categories[0].name == "tool"
    assert r.dataset.categories[0].keypoints == list(OBJ5.coco_keypoints)


def test_xml_result_passes_validate_with_images(tmp_path):
    for n in ("tool_01.jpg", "tool_02.jpg", "tool_03.jpg"):
        cv2.imwrite(str(tmp_path / n), np.zeros((150, 200, 3), np.uint8))
    r = import_file("auto", XML, OBJ5, ImportOptions(images=tmp_path))
    findings = validate_coco(r.dataset.to_coco(), OBJ5, images=tmp_path)
    assert not [f for f in findings if f.severity == "error"], findings


def test_coco_keypoints_1_0_with_attributes():
    r = import_file("cvat", COCO, OBJ5, ImportOptions())
    out = r.dataset.to_coco()
    assert [a["id"] for a in out["annotations"]] == [1, 2, 4]
    assert all("attributes" not in a for a in out["annotations"])
    assert "attributes" in r.report.warnings[0]
    xml = import_file("cvat", XML, OBJ5, ImportOptions()).dataset.to_coco()
    # the same labels through either export give the same keypoints
    for a, b in zip(out["annotations"], xml["annotations"], strict=True):
        assert a["keypoints"] == b["keypoints"]


def test_skeleton_from_cvat_labels(tmp_path):
    d = cvat.labels_to_skeleton_dict(XML)
    assert d["keypoints"] == ["Center", "Top Left", "Top Right", "Bottom Right", "Bottom Left"]
    assert d["limbs"] == [["Center", "Top Left"], ["Center", "Top Right"], ["Center", "Bottom Right"],
                          ["Center", "Bottom Left"]]
    sk = S.from_dict(d)
    assert sk.flip_pairs() == [("Top Left", "Top Right"), ("Bottom Left", "Bottom Right")]  # [left, right]
    # a skeleton built from the export imports it
    assert import_file("cvat", XML, sk, ImportOptions()).report.instances_written == 3


def test_unknown_keypoint_names_are_listed(tmp_path):
    text = XML.read_text().replace("<name>Top Left</name>", "<name>Handle</name>")
    with pytest.raises(InputError) as e:
        import_file("cvat", _xml(tmp_path, text), OBJ5, ImportOptions())
    assert "'Handle'" in e.value.message and "'top_left'" in e.value.message


def test_malformed_xml_is_located(tmp_path):
    with pytest.raises(InputError) as e:
        import_file("cvat", _xml(tmp_path, XML.read_text()[:5000]), OBJ5, ImportOptions())
    assert e.value.where.startswith("line ")
    bad = XML.read_text().replace('points="55.20,50.33"', 'points="55.20;x"')
    with pytest.raises(InputError) as e:
        import_file("cvat", _xml(tmp_path, bad), OBJ5, ImportOptions())
    assert e.value.where == "image[0]/skeleton[0]/points[0]@points"
    bad = XML.read_text().replace('outside="0" occluded="0" points="150.00', 'outside="maybe" occluded="0" points="150.00')
    with pytest.raises(InputError, match="expected 0 or 1"):
        import_file("cvat", _xml(tmp_path, bad), OBJ5, ImportOptions())


def test_dtd_anywhere_is_refused_by_the_parser(tmp_path):
    """The old guard scanned the first 64 KiB for a DOCTYPE: one after a 70 kB comment got through
    to a parser that expands entities. The hardened parser refuses a DTD wherever it is."""
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10 if i else "lol"}">' for i in range(6))
    late = (f'<?xml version="1.0"?><!-- <annotations> {"x" * 70000} --><!DOCTYPE annotations [{laughs}]>'
            '<annotations><version>1.1</version><meta/>&l5;</annotations>')
    p = _xml(tmp_path, late)
    with pytest.raises(InputError, match="DOCTYPE") as e:
        import_file("cvat", p, OBJ5, ImportOptions())
    assert e.value.file == str(p)
    with pytest.raises(InputError, match="DOCTYPE"):
        cvat.skeleton_from_xml(p)


def test_entities_bad_tracks_and_wrong_roots_refused(tmp_path):
    bomb = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxx">]><annotations>&x;</annotations>'
    with pytest.raises(InputError, match="DOCTYPE"):
        import_file("cvat", _xml(tmp_path, bomb), OBJ5, ImportOptions())
    video = XML.read_text().replace("<image id=\"2\"", "<track id=\"x\" label=\"tool\"></track><image id=\"2\"")
    with pytest.raises(InputError, match="track id must be an integer") as e:
        import_file("cvat", _xml(tmp_path, video), OBJ5, ImportOptions())
    assert e.value.where == "track[0]@id"
    with pytest.raises(InputError):
        import_file("cvat", _xml(tmp_path, "<annotation><x/></annotation>"), OBJ5, ImportOptions())


def test_missing_images_folder_file(tmp_path):
    cv2.imwrite(str(tmp_path / "tool_01.jpg"), np.zeros((150, 200, 3), np.uint8))
    with pytest.raises(DataError) as e:  # the data's error (exit 1, V050), located
        import_file("cvat", XML, OBJ5, ImportOptions(images=tmp_path))
    assert "tool_02.jpg" in e.value.message and e.value.where == "image[1]" and e.value.exit_code == 1


# ---------------------------------------------------------- malformed input
_attr = re.compile(r'(\w+)="([^"]*)"')
_junk = st.sampled_from(["", "-1", "nan", "inf", "1e309", "x", "0", "1", "2", "3.5,4", "1,2;3,4", ",", "&amp;", "Top Left"])


@st.composite
def _mutated_xml(draw):
    """The XML export with random attribute values replaced, elements dropped, or the text cut."""
    text = XML.read_text()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["attr", "attr", "drop", "cut"]))
        spans = [m.span(2) for m in _attr.finditer(text)]
        tags = [m.span() for m in re.finditer(r"<(points|skeleton|box|label|image)\b[^>]*>", text)]
        if op == "attr" and spans:
            a, b = draw(st.sampled_from(spans))
            text = text[:a] + draw(_junk) + text[b:]
        elif op == "drop" and tags:
            a, b = draw(st.sampled_from(tags))
            text = text[:a] + text[b:]
        elif op == "cut":
            text = text[: draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_xml())
def test_malformed_xml_raises_only_posedata_errors(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.xml"
        p.write_text(text)
        try:
            r = import_file("cvat", p, OBJ5, ImportOptions())
        except PosedataError:
            return
        json.dumps(r.dataset.to_coco(), allow_nan=False)


def test_cli_skeleton_init_from_cvat_then_import(runner, tmp_path):
    from posedata.cli import cli

    sk = tmp_path / "tool.yaml"
    r = runner.invoke(cli, ["skeleton", "init", "--from-cvat", str(XML), "-o", str(sk)])
    assert r.exit_code == 0, r.output
    loaded = S.load(sk)
    assert loaded.keypoints == ("Center", "Top Left", "Top Right", "Bottom Right", "Bottom Left")
    out = tmp_path / "out.json"
    r = runner.invoke(cli, ["import", "cvat", str(XML), "--skeleton", str(sk), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["categories"][0]["keypoints"] == list(loaded.keypoints)
    r = runner.invoke(cli, ["skeleton", "init", "--from-cvat", str(XML), "--category", "nope", "-o",
                            str(tmp_path / "x.yaml")])
    assert r.exit_code == 2 and "no skeleton label 'nope'" in r.output


def test_project_export_images_keyed_by_task(tmp_path):
    """A project export numbers frames per task: id 0 twice is fine when the task ids differ."""
    text = XML.read_text().replace('<image id="0" name="tool_01.jpg"', '<image id="0" name="tool_01.jpg" task_id="4"')
    text = text.replace('<image id="1" name="tool_02.jpg"', '<image id="0" name="tool_02.jpg" task_id="5"')
    r = import_file("cvat", _xml(tmp_path, text), OBJ5, ImportOptions())
    assert [im.file_name for im in r.dataset.images] == ["tool_01.jpg", "tool_02.jpg"]
    assert [a.image_id for a in r.dataset.annotations] == [1, 1, 2]
    dup = text.replace('task_id="5"', 'task_id="4"')
    with pytest.raises(InputError, match="duplicate image id 0"):
        import_file("cvat", _xml(tmp_path, dup), OBJ5, ImportOptions())


def test_old_style_multi_point_shapes_refused_not_matched_by_position(tmp_path):
    text = ('<annotations><version>1.1</version><meta><task><labels><label><name>tool</name><type>points</type>'
            '</label></labels></task></meta><image id="0" name="a.jpg" width="10" height="10">'
            '<points label="tool" occluded="0" points="1,1;2,2;3,3;4,4;5,5"/></image></annotations>')
    with pytest.raises(InputError, match="by position"):
        import_file("cvat", _xml(tmp_path, text), OBJ5, ImportOptions())


# ------------------------------------------ shapes in any order, projects, video, grouped points
DOC = DATA / "cvat_doc_example.xml"  # the layout of CVAT's own documentation example
PROJECT = DATA / "cvat_project_images_1_1.xml"
VIDEO = DATA / "cvat_video_1_1.xml"
POINTS = DATA / "cvat_points_group_id.xml"


def test_skeleton_after_other_shapes_is_imported():
    """CVAT's documentation example: a box, a polygon, polylines, points, a tag, then the skeleton.
    Every shape before the skeleton used to replace the image key, and the skeleton was dropped."""
    r = import_file("cvat", DOC, OBJ5, ImportOptions())
    out = r.dataset.to_coco()
    assert r.report.instances_read == 1 and len(out["annotations"]) == 1
    assert _kp(out["annotations"][0], "center") == [200, 120, 2]
    assert out["annotations"][0]["image_id"] == out["images"][0]["id"]
    assert not [k for k in r.report.skipped if "not in the export" in k]
    assert r.report.skipped["<polyline> shape with label 'bench' (not skeleton 'tool')"] == 2
    assert r.report.skipped["<mask> shape with label 'bench' (not skeleton 'tool')"] == 1


def test_project_export_every_skeleton_of_every_image():
    r = import_file("cvat", PROJECT, OBJ5, ImportOptions(category="tool"))
    out = r.dataset.to_coco()
    assert r.report.instances_read == 7 and len(out["annotations"]) == 7
    per_image = {im["file_name"]: sum(a["image_id"] == im["id"] for a in out["annotations"]) for im in out["images"]}
    assert per_image == {"a/img_0.jpg": 2, "a/img_1.jpg": 2, "b/img_0.jpg": 2, "b/img_1.jpg": 1}
    assert r.report.skipped["<skeleton> shape with label 'bird' (not skeleton 'tool')"] == 2
    # the grouped box comes after its skeleton and still gives the bbox
    grouped = [a for a in out["annotations"] if _kp(a, "center") == [60, 60, 2]][0]
    assert grouped["bbox"] == pytest.approx([25, 25, 70, 70])
    assert _kp(grouped, "top_left") == [30, 30, 1]
    birds = import_file("cvat", PROJECT, S.from_dict({"name": "bird", "keypoints": ["beak", "tail"],
                                                      "limbs": [["beak", "tail"]], "root": "beak",
                                                      "sigmas": [0.05, 0.05]}),
                        ImportOptions(category="bird"))
    assert birds.report.instances_written == 2
    with pytest.raises(InputError, match="choose one with --category"):
        import_file("cvat", PROJECT, OBJ5, ImportOptions())


def test_video_tracks_every_written_frame_outside_skipped_track_id_kept(tmp_path):
    r = import_file("auto", VIDEO, OBJ5, ImportOptions())
    assert "CVAT for video 1.1" in r.report.format
    out = r.dataset.to_coco()
    names = {im["id"]: im["file_name"] for im in out["images"]}
    got = sorted((names[a["image_id"]], a["track_id"], _kp(a, "center")[0]) for a in out["annotations"])
    # track 1: key frame 0, interpolated frame 1 (keyframe="0"), key frame 2, outside at 3, back at 5
    assert got == [("frame_000000.PNG", 1, 100), ("frame_000001.PNG", 1, 110), ("frame_000001.PNG", 2, 60),
                   ("frame_000002.PNG", 1, 120), ("frame_000005.PNG", 1, 200)]
    assert r.report.skipped["track frame marked outside (the object is not in view)"] == 2
    assert r.report.skipped["<polygon> shape with label 'bench' (not skeleton 'tool')"] == 2
    assert {(im["width"], im["height"]) for im in out["images"]} == {(320, 240)}
    occluded = [a for a in out["annotations"] if a["track_id"] == 1 and _kp(a, "center")[0] == 110][0]
    assert _kp(occluded, "top_right")[2] == 1
    # frames found under --images by the name CVAT's dataset export gives them (any case of extension)
    for n in (0, 1, 2, 5):
        cv2.imwrite(str(tmp_path / f"frame_{n:06d}.png"), np.zeros((240, 320, 3), np.uint8))
    r = import_file("cvat", VIDEO, OBJ5, ImportOptions(images=tmp_path))
    assert sorted(im.file_name for im in r.dataset.images) == [f"frame_{n:06d}.png" for n in (0, 1, 2, 5)]


def test_video_frames_numbered_from_start_frame_and_step(tmp_path):
    text = VIDEO.read_text().replace("<start_frame>0</start_frame>", "<start_frame>10</start_frame>")
    text = text.replace("<frame_filter></frame_filter>", "<frame_filter>step=3</frame_filter>")
    r = import_file("cvat", _xml(tmp_path, text), OBJ5, ImportOptions())
    assert sorted({im.file_name for im in r.dataset.images}) == [f"frame_{10 + 3 * n:06d}.PNG" for n in (0, 1, 2, 5)]


def test_points_grouped_by_group_id():
    """The workflow from before CVAT skeletons: one <points> shape per keypoint, grouped by group_id.
    It used to be refused with a hint to choose a --category."""
    r = import_file("cvat", POINTS, OBJ5, ImportOptions())
    out = r.dataset.to_coco()
    assert len(out["annotations"]) == 3
    a1, a2, a3 = out["annotations"]
    assert _kp(a1, "center") == [60, 60, 2] and _kp(a1, "top_right") == [90, 30, 1]
    assert _kp(a2, "center") == [200, 120, 2] and a2["num_keypoints"] == 5
    assert a1["bbox"] == pytest.approx([20, 20, 80, 80])  # the <box> of group 1
    assert r.report.skipped["<points> label 'Tail' is not a skeleton keypoint"] == 1
    # image 1 has no groups and each keypoint once: one instance, counted as a repair
    assert a3["num_keypoints"] == 4 and _kp(a3, "bottom_left") == [0, 0, 0]
    assert sum(v for k, v in r.report.repairs.items() if "without group_id" in k) == 1


def test_ungrouped_points_in_a_crowded_image_are_not_merged(tmp_path):
    text = POINTS.read_text().replace(' group_id="2"', "")
    r = import_file("cvat", _xml(tmp_path, text), OBJ5, ImportOptions())
    assert len([a for a in r.dataset.annotations if a.image_id == r.dataset.images[0].id]) == 1
    assert sum(v for k, v in r.report.skipped.items() if "cannot tell which instance" in k) == 5
