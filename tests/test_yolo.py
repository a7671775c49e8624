"""YOLO-pose import and export: positional keypoints, kpt_names, flip_idx, the COCO round trip."""
from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import coco
from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import InputError, PosedataError
from posedata.formats import yolo as Y
from posedata.formats.base import ImportOptions

DATA = Path(__file__).parent / "data" / "import"
YD = DATA / "yolo_dataset"
SKEL = DATA / "dlc_mouse.yaml"
COCO17 = S.template_path("coco17")
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


@pytest.fixture
def sk() -> S.Skeleton:
    return S.load(SKEL)


def copy_ds(tmp: Path) -> Path:
    shutil.copytree(YD, tmp / "yd")
    return tmp / "yd"


# ----------------------------------------------------------------------- import
def test_detect() -> None:
    assert Y.detect(YD / "data.yaml") and Y.detect(YD / "data_named.yaml")
    assert not Y.detect(SKEL) and not Y.detect(DATA / "dlc_project" / "config.yaml") and not Y.detect(YD)


def test_positional_import_golden(sk) -> None:
    r = Y.read(YD / "data.yaml", sk, ImportOptions(category="mouse", keep_empty=True))
    ds = r.dataset
    assert [(im.file_name, im.width, im.height, im.extra["split"]) for im in ds.images] == [
        ("images/train/a.png", 200, 100, "train"), ("images/train/b.jpg", 100, 80, "train"),
        ("images/val/c.png", 64, 64, "val")]  # c.png: listed by val.txt ('./' = beside the txt), no label file
    a, b = (x.keypoints for x in ds.annotations)
    np.testing.assert_allclose(a, [[50, 30, 2], [40, 25, 2], [60, 25, 1], [50, 75, 2]])
    # v=0 with stale coordinates -> (0, 0, 0); visibility 0.9 -> labelled (v=2), reported
    np.testing.assert_allclose(b, [[50, 32, 2], [0, 0, 0], [55, 28, 2], [50, 56, 2]])
    np.testing.assert_allclose(ds.annotations[0].bbox, (30, 20, 40, 60))
    rep = r.report
    assert rep.skipped["instance of another class than 'mouse'"] == 1
    assert rep.repairs["visibility other than 0/1/2 read as labelled (v=2) when > 0"] == 1
    # positional matching is never silent
    assert any("BY POSITION" in w and "flip_idx agrees" in w for w in rep.warnings)


def test_kpt_names_match_by_name(sk) -> None:
    r = Y.read(YD / "data_named.yaml", sk, ImportOptions(category="0"))
    assert not any("BY POSITION" in w for w in r.report.warnings)
    np.testing.assert_allclose(r.dataset.annotations[0].keypoints[:, :2], [[50, 30], [40, 25], [60, 25], [50, 75]])


def test_kpt_names_reorder(sk, tmp_path) -> None:
    d = copy_ds(tmp_path)
    y = d / "data_named.yaml"
    # the same label columns named in another order: the names decide, not the positions
    y.write_text(y.read_text().replace("[Snout, Left Ear, Right Ear, Tail Base]", "[tail_base, right_ear, left_ear, snout]")
                 .replace("flip_idx: [0, 2, 1, 3]", "flip_idx: [0, 2, 1, 3]"))
    ds = Y.read(y, sk, ImportOptions(category="mouse")).dataset
    np.testing.assert_allclose(ds.annotations[0].keypoints[:, :2], [[50, 75], [60, 25], [40, 25], [50, 30]])


def test_positional_refused_when_it_contradicts(sk, tmp_path) -> None:
    d = copy_ds(tmp_path)
    y = d / "data.yaml"
    y.write_text(y.read_text().replace("flip_idx: [0, 2, 1, 3]", "flip_idx: [3, 1, 2, 0]"))
    with pytest.raises(InputError, match="flip_idx disagrees"):
        Y.read(y, sk, ImportOptions(category="mouse"))
    with pytest.raises(InputError, match="kpt_names"):
        Y.read(YD / "data.yaml", S.resolve("coco17"), ImportOptions(category="mouse"))  # 4 columns, 17 keypoints


def test_two_column_keypoints(sk, tmp_path) -> None:
    d = copy_ds(tmp_path)
    y = d / "data.yaml"
    y.write_text(y.read_text().replace("kpt_shape: [4, 3]", "kpt_shape: [4, 2]").replace("names:\n  0: mouse\n  1: feeder\n",
                                                                                         "names: [mouse]\n"))
    (d / "labels" / "train" / "a.txt").write_text("0 0.25 0.5 0.2 0.6 0.25 0.3 0 0 0.3 0.25 0.25 0.75\n")
    (d / "labels" / "train" / "b.txt").write_text("")
    ds = Y.read(y, sk, ImportOptions()).dataset
    np.testing.assert_allclose(ds.annotations[0].keypoints, [[50, 30, 2], [0, 0, 0], [60, 25, 2], [50, 75, 2]])


@pytest.mark.parametrize("edit, where", [
    (("labels/train/a.txt", lambda t: t[:20]), "line 1"),  # truncated line
    (("labels/train/b.txt", lambda t: t.replace("0.55", "x.55")), "line 1"),
    (("labels/train/b.txt", lambda t: "7" + t[1:]), "class"),
    (("data.yaml", lambda t: t.replace("kpt_shape: [4, 3]", "kpt_shape: [4, 5]")), "kpt_shape"),
    (("data.yaml", lambda t: t.replace("train: images/train", "train: images/nope")), "train"),
    (("data.yaml", lambda t: t.replace("names:", "names: [[")), "invalid YAML"),
    (("val.txt", lambda t: "./images/val/gone.png\n"), "gone.png"),
])
def test_broken_input_exit_2_nothing_written(runner, tmp_path, edit, where) -> None:
    d = copy_ds(tmp_path)
    f = d / edit[0]
    f.write_text(edit[1](f.read_text()))
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "yolo", str(d / "data.yaml"), "--skeleton", str(SKEL), "--category", "mouse",
                              "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert where in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_cli_import_auto(runner, tmp_path) -> None:
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "auto", str(YD / "data_named.yaml"), "--skeleton", str(SKEL),
                              "--category", "mouse", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "import yolo" in res.output
    assert len(json.loads(out.read_text())["annotations"]) == 2


# ----------------------------------------------------------------------- export
def make_coco(tmp: Path) -> tuple[Path, Path]:
    """A COCO17 dataset of two images, with occluded, unlabelled, crowd, box-less and out-of-image cases."""
    imgs = tmp / "imgs"
    (imgs / "sub").mkdir(parents=True)
    cv2.imwrite(str(imgs / "one.png"), np.zeros((480, 640, 3), np.uint8))
    cv2.imwrite(str(imgs / "sub" / "two.jpg"), np.zeros((300, 200, 3), np.uint8))
    rng = np.random.default_rng(0)

    def person(w, h, n_lab=17):
        k = np.zeros((17, 3))
        k[:, 0] = rng.uniform(1, w - 1, 17).round(2)
        k[:, 1] = rng.uniform(1, h - 1, 17).round(2)
        k[:, 2] = rng.choice([1, 2], 17)
        k[n_lab:] = 0
        return k

    anns = []
    for i, (img, (w, h)) in enumerate([(1, (640, 480)), (1, (640, 480)), (2, (200, 300))]):
        k = person(w, h, n_lab=17 if i < 2 else 12)
        x0, y0 = k[k[:, 2] > 0, :2].min(0)
        x1, y1 = k[k[:, 2] > 0, :2].max(0)
        anns.append({"id": i + 1, "image_id": img, "category_id": 1, "iscrowd": 0, "keypoints": k.ravel().tolist(),
                     "num_keypoints": int((k[:, 2] > 0).sum()), "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "area": float((x1 - x0) * (y1 - y0)), "segmentation": []})
    anns[2]["bbox"] = [0, 0, 0, 0]  # no box: export makes one from the keypoints
    out = person(640, 480)
    out[3] = (700, 10, 2)  # left_ear outside the 640-wide image
    anns.append({"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": out.ravel().tolist(),
                 "num_keypoints": 17, "bbox": [1, 1, 630, 470], "area": 296100.0, "segmentation": []})
    anns.append({"id": 5, "image_id": 2, "category_id": 1, "iscrowd": 1, "keypoints": [0] * 51, "num_keypoints": 0,
                 "bbox": [0, 0, 50, 50], "area": 2500, "segmentation": {"counts": [0, 2500], "size": [300, 200]}})
    cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(S.resolve("coco17").keypoints),
           "skeleton": [[1, 2]]}
    data = {"images": [{"id": 1, "file_name": "one.png", "width": 640, "height": 480},
                       {"id": 2, "file_name": "sub/two.jpg", "width": 200, "height": 300}],
            "annotations": anns, "categories": [cat]}
    p = tmp / "data.json"
    p.write_text(json.dumps(data))
    return p, imgs


def test_round_trip_coco_yolo_coco(runner, tmp_path) -> None:
    src, imgs = make_coco(tmp_path)
    out = tmp_path / "yolo"
    res = runner.invoke(cli, ["export", "yolo", str(src), "--skeleton", str(COCO17), "-o", str(out), "--images", str(imgs)])
    assert res.exit_code == 0, res.output
    assert "1 labelled keypoint outside the image" in res.output and "crowd" in res.output
    y = Y._load_yaml(out / "data.yaml")
    assert y["kpt_shape"] == [17, 3] and y["flip_idx"] == COCO_FLIP and y["kpt_names"][0] == list(S.resolve("coco17").keypoints)
    assert (out / "images" / "sub" / "two.jpg").is_file() and (out / "labels" / "sub" / "two.txt").is_file()
    # every value Ultralytics checks lies in [0, 1]
    vals = np.concatenate([np.loadtxt(p, ndmin=2).ravel() for p in (out / "labels").rglob("*.txt")])
    assert vals.min() >= 0 and vals.max() <= 2 and len(vals) == 4 * (5 + 51)

    back = tmp_path / "back.json"
    res = runner.invoke(cli, ["import", "yolo", str(out / "data.yaml"), "--skeleton", str(COCO17), "-o", str(back)])
    assert res.exit_code == 0, res.output
    assert "BY POSITION" not in res.output  # the exported YAML names its keypoints
    a, b = coco.load(src), coco.load(back)
    name_of = {im.id: Path(im.file_name).name for im in a.images}
    back_of = {im.id: Path(im.file_name).name for im in b.images}
    # YOLO keeps one file per image, in the images' order: compare per image, in file order
    orig = sorted((x for x in a.annotations if not x.iscrowd), key=lambda x: x.image_id)
    got = b.annotations
    assert [name_of[x.image_id] for x in orig] == [back_of[x.image_id] for x in got]
    for x, z in zip(orig, got, strict=True):
        lab = x.keypoints[:, 2] > 0
        if x.id == 4:
            lab[3] = False  # the point outside the image left the data, as reported
            assert z.keypoints[3, 2] == 0
        np.testing.assert_array_equal(z.keypoints[:, 2], np.where(lab, x.keypoints[:, 2], 0))
        np.testing.assert_allclose(z.keypoints[lab, :2], x.keypoints[lab, :2], atol=1e-3)  # 6-decimal rounding
        assert z.bbox[2] > 0 and z.bbox[3] > 0


def test_export_flip_idx_in_source_order(tmp_path) -> None:
    """openpose18 has a derived neck and lists COCO's order under source: the export is in COCO's order."""
    src, imgs = make_coco(tmp_path)
    sk = S.resolve("openpose18")
    order, fidx = Y.export_order(sk)
    assert order == list(S.resolve("coco17").keypoints) and fidx == COCO_FLIP
    ds = coco.load(src)
    rep = Y.export(ds, sk, tmp_path / "y", images=None)
    assert rep.images == 2 and rep.images_copied == 0 and any("--images" in n for n in rep.notes)
    assert Y._load_yaml(tmp_path / "y" / "data.yaml")["flip_idx"] == COCO_FLIP


def test_export_refuses_and_keeps_outputs(runner, tmp_path) -> None:
    src, imgs = make_coco(tmp_path)
    out = tmp_path / "yolo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["export", "yolo", str(src), "--skeleton", str(COCO17), "-o", str(out), "--images", str(imgs)]
    res = runner.invoke(cli, args)
    assert res.exit_code == 2 and "--force" in res.output and (out / "keep.txt").exists()
    # a folder export yolo did not make is never replaced, even with --force
    res = runner.invoke(cli, args + ["--force"])
    assert res.exit_code == 2 and "did not make" in res.output and (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    out.rmdir()
    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and (out / "data.yaml").exists()
    first = (out / "data.yaml").read_bytes()
    (imgs / "one.png").unlink()  # a missing image: nothing is written, the old folder stays
    res = runner.invoke(cli, args + ["--force"])
    assert res.exit_code == 2 and "one.png" in res.output and (out / "data.yaml").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".yolo")] == []  # no temp folder left behind
    cv2.imwrite(str(imgs / "one.png"), np.zeros((480, 640, 3), np.uint8))
    (out / "labels" / "stale.txt").write_text("from an earlier export")
    res = runner.invoke(cli, args + ["--force"])  # its own earlier output: replaced as a whole
    assert res.exit_code == 0 and not (out / "labels" / "stale.txt").exists() and (out / "data.yaml").exists()


def test_export_unknown_keypoints(runner, tmp_path) -> None:
    src, imgs = make_coco(tmp_path)
    res = runner.invoke(cli, ["export", "yolo", str(src), "--skeleton", str(SKEL), "-o", str(tmp_path / "y")])
    assert res.exit_code == 2 and "snout" in res.output and not (tmp_path / "y").exists()


def test_yolo_lines_vectorised() -> None:
    kps = np.array([[[10, 20, 2], [0, 0, 0], [-1, 5, 1]]], dtype=float)
    lines, outside = Y.yolo_lines(kps, np.array([[5, 5, 10, 10]]), np.array([[100, 50]]))
    assert lines == ["0 0.100000 0.200000 0.100000 0.200000 0.100000 0.400000 2 0.000000 0.000000 0 "
                     "0.000000 0.000000 0"]
    assert outside.tolist() == [[False, False, True]]


def test_skeleton_init_from_yolo(runner, tmp_path) -> None:
    out = tmp_path / "s.yaml"
    res = runner.invoke(cli, ["skeleton", "init", "--from-yolo", str(YD / "data_named.yaml"), "--category", "mouse",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    sk, findings = S.load_with_findings(out)
    assert sk.keypoints == ("Snout", "Left Ear", "Right Ear", "Tail Base") and sk.flip_pairs() == [("Left Ear", "Right Ear")]
    assert sk.num_limbs == 0 and any(f.code == "S020" for f in findings)  # YOLO has no limbs: the user adds them
    d, notes = Y.skeleton_from_yaml(YD / "data.yaml", "mouse")
    assert d["keypoints"] == ["kp0", "kp1", "kp2", "kp3"] and any("kpt_names" in n for n in notes)


def test_skeleton_init_from_yolo_reads_the_yaml_skeleton_edges(runner, tmp_path) -> None:
    """A `skeleton:` edge list in the dataset YAML was ignored: 0 limbs, and the new skeleton failed
    its own check (S020)."""
    y = tmp_path / "data.yaml"
    base = (YD / "data_named.yaml").read_text()
    y.write_text(base + "skeleton: [[1, 2], [1, 3], [1, 4]]\n")
    out = tmp_path / "s.yaml"
    res = runner.invoke(cli, ["skeleton", "init", "--from-yolo", str(y), "--category", "mouse", "-o", str(out)])
    assert res.exit_code == 0, res.output
    sk, findings = S.load_with_findings(out)
    assert sorted(tuple(sorted((sk.keypoints[a], sk.keypoints[b]))) for a, b in sk.limbs) == [
        ("Left Ear", "Snout"), ("Right Ear", "Snout"), ("Snout", "Tail Base")]
    assert not [f for f in findings if f.severity == "error"]
    # 0-based lists and name pairs read too; edges that fit no convention are refused, located
    y.write_text(base + "skeleton: [[0, 1], [0, 2], [0, 3]]\n")
    d, notes = Y.skeleton_from_yaml(y, "mouse")
    assert len(d["limbs"]) == 3 and any("0-based" in n for n in notes)
    y.write_text(base + "skeleton: [[Snout, Left Ear], [Snout, Right Ear], [Snout, Tail Base]]\n")
    assert len(Y.skeleton_from_yaml(y, "mouse")[0]["limbs"]) == 3
    y.write_text(base + "skeleton: [[1, 9]]\n")
    res = runner.invoke(cli, ["skeleton", "init", "--from-yolo", str(y), "--category", "mouse", "-o",
                              str(tmp_path / "t.yaml")])
    assert res.exit_code == 2 and "skeleton[0]" in res.output and not (tmp_path / "t.yaml").exists()
    res = runner.invoke(cli, ["skeleton", "init", "--from-yolo", str(y), "--category", "mouse", "--ignore-edges",
                              "-o", str(tmp_path / "t.yaml")])
    assert res.exit_code == 0 and S.load_with_findings(tmp_path / "t.yaml")[0].num_limbs == 0


def test_skeleton_init_from_yolo_guesses_flip_pairs_without_flip_idx(tmp_path) -> None:
    """Without flip_idx the flip map used to be left empty whatever the names said."""
    y = tmp_path / "data.yaml"
    y.write_text((YD / "data_named.yaml").read_text().replace("flip_idx: [0, 2, 1, 3]\n", ""))
    d, notes = Y.skeleton_from_yaml(y, "mouse")
    assert d["flip"] == [["Left Ear", "Right Ear"]] and any("guessed from the keypoint names" in n for n in notes)


# ----------------------------------------------------------------- property
_TOKENS = st.sampled_from(["0", "1", "2", "0.5", "-1", "1e9", "nan", "inf", "x", "", "\n", " ", "0.25 0.25 2"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(_TOKENS, max_size=20).map(" ".join), max_size=3),
       yaml_edit=st.sampled_from([None, ("[4, 3]", "[4, 2]"), ("[0, 2, 1, 3]", "[0, 1]"), ("names:", "nc: x\nnames:"),
                                  ("path: .", "path: 7"), ("kpt_shape: [4, 3]", "kpt_shape: four")]))
def test_mutated_labels_raise_only_posedata_errors(tmp_path_factory, lines, yaml_edit) -> None:
    d = copy_ds(tmp_path_factory.mktemp("m"))
    (d / "labels" / "train" / "b.txt").write_text("\n".join(lines))
    if yaml_edit:
        y = d / "data.yaml"
        y.write_text(y.read_text().replace(*yaml_edit))
    try:
        r = Y.read(d / "data.yaml", S.load(SKEL), ImportOptions(category="mouse", keep_empty=True))
    except PosedataError:
        return
    for a in r.dataset.annotations:
        assert a.keypoints.shape == (4, 3) and np.isfinite(a.keypoints).all()


def test_agrees_with_sleap_io(sk, tmp_path) -> None:
    """sleap-io's Ultralytics reader wants the `<split>/images` layout; the same labels there read alike."""
    sio = pytest.importorskip("sleap_io")
    d = tmp_path / "ds"
    (d / "train" / "images").mkdir(parents=True)
    (d / "train" / "labels").mkdir(parents=True)
    for n in ("a.png", "b.jpg"):
        shutil.copy(YD / "images" / "train" / n, d / "train" / "images" / n)
    # one class, and visibility 2 where the fixture has 0.9 (sleap-io truncates it to 0)
    (d / "train" / "labels" / "a.txt").write_text((YD / "labels" / "train" / "a.txt").read_text().splitlines()[0] + "\n")
    (d / "train" / "labels" / "b.txt").write_text((YD / "labels" / "train" / "b.txt").read_text().replace(" 0.9", " 2"))
    (d / "data.yaml").write_text("path: .\ntrain: train/images\nkpt_shape: [4, 3]\nflip_idx: [0, 2, 1, 3]\n"
                                 "names: [mouse]\n")
    ours = [a.keypoints for a in Y.read(d / "data.yaml", sk, ImportOptions()).dataset.annotations]
    theirs = [i.numpy() for lf in sio.load_ultralytics(str(d), split="train").labeled_frames for i in lf.instances]
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs, strict=True):
        lab = a[:, 2] > 0
        np.testing.assert_array_equal(lab, np.isfinite(b).all(axis=1))
        np.testing.assert_allclose(a[lab, :2], b[lab], atol=1e-6)


def test_roboflow_layout_and_splits_beside_the_root(sk, tmp_path) -> None:
    """Roboflow writes `train: ../train/images` with no `path`; Ultralytics reads it as `train/images`.
    A split that really lies beside the root is named from the folder holding every image."""
    d = tmp_path / "rf"
    for split, src in (("train", "a.png"), ("valid", "b.jpg")):
        (d / split / "images").mkdir(parents=True)
        (d / split / "labels").mkdir(parents=True)
        shutil.copy(YD / "images" / "train" / src, d / split / "images" / src)
        lab = (YD / "labels" / "train" / Path(src).with_suffix(".txt").name).read_text().splitlines()[0]
        (d / split / "labels" / Path(src).with_suffix(".txt").name).write_text(lab + "\n")
    (d / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nkpt_shape: [4, 3]\n"
                                 "flip_idx: [0, 2, 1, 3]\nnc: 1\nnames: ['mouse']\n")
    ds = Y.read(d / "data.yaml", sk, ImportOptions()).dataset
    assert [im.file_name for im in ds.images] == ["train/images/a.png", "valid/images/b.jpg"]
    assert len(ds.annotations) == 2
    sub = d / "train" / "data.yaml"  # the same YAML one level down: '../valid/images' exists as written
    sub.write_text((d / "data.yaml").read_text().replace("../train/images", "images"))
    r = Y.read(sub, sk, ImportOptions())
    assert [im.file_name for im in r.dataset.images] == ["train/images/a.png", "valid/images/b.jpg"]
    assert any(f"images root {d}" in w for w in r.report.warnings)


def test_export_box_only_annotation(tmp_path) -> None:
    src, imgs = make_coco(tmp_path)
    data = json.loads(src.read_text())
    del data["annotations"][0]["keypoints"], data["annotations"][0]["num_keypoints"]
    src.write_text(json.dumps(data))
    rep = Y.export(coco.load(src), S.resolve("coco17"), tmp_path / "y")
    first = (tmp_path / "y" / "labels" / "one.txt").read_text().splitlines()[0].split()
    assert rep.instances == 4 and first[5:] == ["0.000000", "0.000000", "0"] * 17


def test_cli_unknown_kpt_name_exit_2(runner, tmp_path) -> None:
    d = copy_ds(tmp_path)
    y = d / "data_named.yaml"
    y.write_text(y.read_text().replace("Tail Base", "whisker"))
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "yolo", str(y), "--skeleton", str(SKEL), "--category", "mouse", "-o", str(out)])
    assert res.exit_code == 2 and "whisker" in res.output and "kpt_names" in res.output and not out.exists()


def test_export_image_without_annotations_gets_empty_label_file(runner, tmp_path) -> None:
    """YOLO's negatives: an image with no instance gets an empty label file (it used to raise a
    ValueError in yolo_lines; 47 of 79 images of a real COCO val subset have no person)."""
    src, imgs = make_coco(tmp_path)
    data = json.loads(src.read_text())
    first = data["images"][0]["id"]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != first]
    src.write_text(json.dumps(data))
    out = tmp_path / "y"
    res = runner.invoke(cli, ["export", "yolo", str(src), "--skeleton", str(COCO17), "-o", str(out), "--images", str(imgs)])
    assert res.exit_code == 0, res.output
    empty = out / "labels" / PurePosixPath(data["images"][0]["file_name"]).with_suffix(".txt")
    assert empty.read_text() == "" and (out / "images" / data["images"][0]["file_name"]).is_file()
    lines, outside = Y.yolo_lines(np.zeros((0, 17, 3)), np.zeros((0, 4)), np.zeros((0, 2)))
    assert lines == [] and outside.shape == (0, 17)
