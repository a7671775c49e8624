"""Evaluation: inference geometry, flip, COCO results, COCOeval, and the val/infer/export commands.

The "model" in most tests is a stand-in that renders ground-truth targets (posedata.targets) for
the image it is shown: it finds the image inside the padded input, recognises it by
comparing with each dataset image (and its mirror), maps the JSON's keypoints through the scale and padding it observes (and the mirror, for
the flipped copy, swapping labels by the flip map), and returns [heatmaps, pafs] at stride 8. A
correct inference + grouping + COCO pipeline must then score AP near 1.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from repo_paths import TEMPLATES
from test_grouping import layout_instances

from posedata import skeleton as S
from posedata.cli import cli
from posedata.convert import map_keypoints
from posedata.errors import InputError
from posedata.targets import render_heatmaps, render_pafs
from trainer import evaluate as E
from trainer import metrics as M
from trainer import predict as P


# ------------------------------------------------------------------ the ground-truth stand-in
class GTModel(torch.nn.Module):
    """Renders ground-truth maps for the dataset image it recognises in its (padded) input."""

    def __init__(self, sk, coco: dict, images_dir: Path, stride: int = 8):
        super().__init__()
        self.sk, self.stride = sk, stride
        names = [c for c in coco["categories"] if c.get("keypoints")][0]["keypoints"]
        src = sk.source_index(names)
        anns: dict[int, list] = {}
        for a in coco["annotations"]:
            if not a.get("iscrowd") and a.get("keypoints"):
                anns.setdefault(a["image_id"], []).append(a["keypoints"])
        self.known = []  # (normalised image, skeleton-order internal keypoints)
        for im in coco["images"]:
            kp = np.asarray(anns.get(im["id"], []), dtype=np.float64).reshape(-1, len(names), 3)
            img = cv2.imread(str(images_dir / im["file_name"]))
            wh = np.tile([img.shape[1], img.shape[0]], (len(kp), 1))
            internal = map_keypoints(kp, wh, sk, src, dtype=np.float64)
            self.known.append(((img.astype(np.float32) - 128) / 256, internal))
        self.calls = 0

    def identify(self, content: np.ndarray) -> tuple[np.ndarray, tuple[int, int], bool]:
        """The dataset image (and whether mirrored) closest to the scaled content."""
        ch, cw = content.shape[:2]
        best = None
        for img, kps in self.known:
            r = cv2.resize(img, (cw, ch), interpolation=cv2.INTER_CUBIC)
            for mirrored in (False, True):
                d = float(np.abs((r[:, ::-1] if mirrored else r) - content).mean())
                if best is None or d < best[0]:
                    best = (d, kps, img.shape[:2], mirrored)
        return best[1], best[2], best[3]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.calls += 1
        heats, pafs = [], []
        b, _, hp, wp = x.shape
        for i in range(b):
            g = x[i].numpy().transpose(1, 2, 0)
            filled = np.abs(g).max(2) > 1e-6
            rows, cols = np.flatnonzero(filled.any(1)), np.flatnonzero(filled.any(0))
            top, left = rows[0], cols[0]
            ch, cw = rows[-1] - top + 1, cols[-1] - left + 1
            kps, (h, w), mirrored = self.identify(g[top:top + ch, left:left + cw])
            kp = kps.copy()
            # cv2.resize maps pixel centres: x' = (x + 0.5) * scale - 0.5
            kp[:, :, 0] = (kp[:, :, 0] + 0.5) * cw / w - 0.5
            kp[:, :, 1] = (kp[:, :, 1] + 0.5) * ch / h - 0.5 + top
            if mirrored:
                kp[:, :, 0] = cw - 1 - kp[:, :, 0]
                kp = kp[:, list(self.sk.flip)]
            kp[:, :, 0] += left
            mh, mw = hp // self.stride, wp // self.stride
            heats.append(render_heatmaps(kp, mh, mw, self.stride))
            pafs.append(render_pafs(kp, self.sk.limbs_array, mh, mw, self.stride))
        return [torch.from_numpy(np.stack(heats)), torch.from_numpy(np.stack(pafs))]


def make_dataset(root: Path, sk, n_images: int = 3, per_image: int = 4, seed: int = 0, h: int = 300,
                 w: int = 420, ext: str = ".png") -> tuple[Path, Path, dict]:
    """A COCO keypoint file (the skeleton's coco_keypoints, non-numeric file names, non-sequential
    ids) with images of two grey levels each, instances laid out from the skeleton's tree."""
    rng = np.random.default_rng(seed)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    names = list(sk.coco_keypoints)
    src = sk.source_index(names)
    coco = {"images": [], "annotations": [], "categories": [{"id": 7, "name": sk.name, "keypoints": names,
                                                               "skeleton": []}]}
    for n in range(n_images):
        image_id = 1000 + 37 * n
        levels = (20 + 9 * n, 24 + 9 * n)
        img = np.full((h, w, 3), levels[0], np.uint8)
        img[:, w // 2:] = levels[1]
        fname = f"frame_{chr(97 + n)}{ext}"
        cv2.imwrite(str(images_dir / fname), img)
        coco["images"].append({"id": image_id, "file_name": fname, "width": w, "height": h})
        inst = layout_instances(sk, per_image, rng, size=128, cols=3, margin=32)
        for m in range(per_image):
            kp = np.zeros((len(names), 3))
            sel = np.flatnonzero(src >= 0)
            kp[src[sel], :2] = np.round(inst[m, sel, :2], 1)
            kp[src[sel], 2] = 2
            x0, y0 = kp[:, :2].min(0)
            x1, y1 = kp[:, :2].max(0)
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id, "category_id": 7,
                "keypoints": kp.ravel().tolist(), "num_keypoints": len(names), "iscrowd": 0,
                "bbox": [x0 - 8, y0 - 8, x1 - x0 + 16, y1 - y0 + 16], "area": float((x1 - x0 + 16) * (y1 - y0 + 16))})
    path = root / "val.json"
    path.write_text(json.dumps(coco))
    return path, images_dir, coco


def sk_named(name: str):
    return S.load(TEMPLATES / f"{name}.yaml")


# ------------------------------------------------------------------ AP near 1 on ground truth
@pytest.mark.parametrize("name", ["openpose18", "hand21", "quadruped17", "object5"])
def test_evaluate_ground_truth_maps_give_ap_near_one(tmp_path, name):
    sk = sk_named(name)
    coco_json, images, coco = make_dataset(tmp_path, sk)
    model = GTModel(sk, coco, images)
    res = E.evaluate(model, sk, coco_json, images)
    assert res["n_images"] == 3
    assert res["AP"] > 0.97, res
    assert res["AR"] > 0.97
    assert res["n_detections"] == 12
    # results carry the JSON's own image ids and category, keypoints in the file's order and count
    assert {r["image_id"] for r in res["results"]} == {im["id"] for im in coco["images"]}
    assert {r["category_id"] for r in res["results"]} == {7}
    assert all(len(r["keypoints"]) == 3 * len(sk.coco_keypoints) for r in res["results"])
    pk = {r["keypoint"]: r for r in res["per_keypoint"]}
    assert list(pk) == list(sk.coco_keypoints)
    assert all(r["found_rate"] == 1.0 and r["pck"] == 1.0 and r["error_px"] < 2.0 for r in pk.values())
    np.testing.assert_allclose([r["sigma"] for r in pk.values()],
                               [sk.sigmas[sk.index(k)] for k in sk.coco_keypoints])


@pytest.mark.parametrize("name,flip,multiscale", [("openpose18", True, False), ("quadruped17", True, False),
                                                  ("object5", False, True)])
def test_evaluate_flip_and_multiscale(tmp_path, name, flip, multiscale):
    sk = sk_named(name)
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2)
    model = GTModel(sk, coco, images)
    res = E.evaluate(model, sk, coco_json, images, flip=flip, multiscale=multiscale)
    assert res["AP"] > 0.97, res
    # flip runs the mirrored copy in the same batch; multiscale runs 4 scales
    assert model.calls == 2 * (4 if multiscale else 1)


def test_flip_averaging_needs_the_flip_map(tmp_path):
    """A model whose mirrored output is averaged without swapping labels would put every left
    keypoint on the right: with the flip map the averaged maps equal the direct ones."""
    sk = sk_named("quadruped17")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=1)
    model = GTModel(sk, coco, images)
    img = cv2.imread(str(images / coco["images"][0]["file_name"]))
    h0, p0 = P.predict(model, img, sk)
    h1, p1 = P.predict(model, img, sk, flip=True)
    assert np.abs(h1 - h0).max() < 0.35  # rendering is not exactly mirror-symmetric at stride 8
    left, right = sk.index("left_front_paw"), sk.index("right_front_paw")
    ky = np.unravel_index(np.argmax(h0[left]), h0[left].shape)
    assert abs(h1[left][ky] - h0[left][ky]) < 0.2 and h1[right][ky] < 0.1
    # the sign rules: PAF x flips for a mirrored limb; the averaged field keeps its direction
    li = sk.limbs.index((sk.index("left_shoulder"), sk.index("left_elbow")))
    on = np.abs(p0[2 * li]) + np.abs(p0[2 * li + 1]) > 0.5
    assert on.any()
    dots = p0[2 * li][on] * p1[2 * li][on] + p0[2 * li + 1][on] * p1[2 * li + 1][on]
    assert np.median(dots) > 0.5


def test_predict_geometry_and_shapes(tmp_path):
    sk = sk_named("object5")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=1, h=250, w=170)
    model = GTModel(sk, coco, images)
    img = cv2.imread(str(images / coco["images"][0]["file_name"]))
    heat, pafs = P.predict(model, img, sk)
    assert heat.shape == (6, 250, 170) and pafs.shape == (8, 250, 170)
    assert heat.dtype == np.float32
    # the peak of each centre keypoint lands on its ground truth in image pixels
    peaks = P.group(heat, pafs, sk)[0]
    gt = np.asarray([a["keypoints"] for a in coco["annotations"]]).reshape(-1, 5, 3)
    inside = gt[:, :, 0].max(1) < 170
    for g in gt[inside]:
        d = np.abs(peaks[:, 0, :2] - g[0, :2]).max(1)
        assert d.min() <= 1.5


def test_pad_amounts_follow_the_reference():
    # scaled to 368 high: width padded to a multiple of 8, at least 368, image centred
    assert P.pad_amounts(368, 491, 368, 8) == (0, 2, 0, 3)
    assert P.pad_amounts(368, 200, 368, 8) == (0, 84, 0, 84)
    assert P.pad_amounts(184, 245, 368, 8) == (92, 61, 92, 62)  # multiscale 0.5
    assert P.pad_amounts(553, 700, 368, 8) == (3, 2, 4, 2)  # taller than input: stride only


# ------------------------------------------------------------------ COCO results and scores
def test_to_coco_keypoints_order_offset_and_derived():
    sk = sk_named("openpose18")
    coco_names = list(sk.coco_keypoints)
    target = sk.source_index(coco_names)
    poses = np.full((1, 18, 3), -1.0)
    poses[0, sk.index("nose")] = [10, 20, 0.9]
    poses[0, sk.index("neck")] = [11, 30, 0.8]
    poses[0, sk.index("left_ear")] = [0, 0, 0.5]  # a peak at the corner is found, not missing
    out = M.to_coco_keypoints(poses, target, 17)
    assert out.shape == (1, 17, 3)
    assert out[0, coco_names.index("nose")].tolist() == [10.5, 20.5, 1]
    assert out[0, coco_names.index("left_ear")].tolist() == [0.5, 0.5, 1]
    assert out[0, coco_names.index("right_ear")].tolist() == [0, 0, 0]
    assert (out[0, :, 2] > 0).sum() == 2  # the neck is dropped


def test_instance_score_generalises_the_reference():
    sk = sk_named("openpose18")
    poses = np.full((2, 18, 3), -1.0)
    poses[:, :5, :] = 1.0  # five keypoints including the neck (index 1)
    poses[1, 1] = -1.0  # the second instance has no neck
    det = P.Detections(poses, np.array([3.0, 3.0]), np.array([5, 4]))
    # the reference's total * max(0, count - 1), with or without a neck in the instance
    np.testing.assert_allclose(M.instance_scores(det, sk), [3.0 * 4, 3.0 * 3])
    det = P.Detections(poses[:1], np.array([3.0]), np.array([1]))
    np.testing.assert_allclose(M.instance_scores(det, sk), [0.0])
    hand = sk_named("hand21")
    det = P.Detections(np.zeros((1, 21, 3)), np.array([2.0]), np.array([21]))
    np.testing.assert_allclose(M.instance_scores(det, hand), [42.0])


def test_coco_eval_uses_the_skeleton_sigmas(tmp_path):
    """The same 3 px error scores differently under different sigmas: they reach COCOeval."""
    sk = sk_named("object5")
    coco_json, _, coco = make_dataset(tmp_path, sk, n_images=1)
    results = []
    for a in coco["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        kp[:, 0] += 3
        kp[:, 2] = 1
        results.append({"image_id": a["image_id"], "category_id": 7, "keypoints": kp.ravel().tolist(), "score": 1.0})
    gt = M.load_ground_truth(coco_json, sk)
    tight = M.coco_eval(gt, results)[0]
    gt.sigmas = gt.sigmas * 0.1
    tighter = M.coco_eval(gt, results)[0]
    assert tight["AP"] > 0.9 and tighter["AP"] < tight["AP"] - 0.3
    empty = M.coco_eval(gt, [])[0]
    assert empty["AP"] == 0.0


def test_ground_truth_restricts_to_skeleton_keypoints_and_locates_errors(tmp_path):
    sk = sk_named("object5")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=1)
    # an extra dataset keypoint the skeleton does not use is left out of the evaluation
    cat = coco["categories"][0]
    cat["keypoints"] = ["extra"] + cat["keypoints"]
    for a in coco["annotations"]:
        a["keypoints"] = [5, 5, 2] + a["keypoints"]
    coco_json.write_text(json.dumps(coco))
    gt = M.load_ground_truth(coco_json, sk)
    assert gt.keypoint_names == list(sk.keypoints)
    assert len(gt.coco["annotations"][0]["keypoints"]) == 15
    coco["annotations"][2]["keypoints"] = [1, 2, 2]
    coco_json.write_text(json.dumps(coco))
    with pytest.raises(InputError, match="expected 18 numbers") as ei:
        M.load_ground_truth(coco_json, sk)
    assert ei.value.where == "annotations[2].keypoints"
    cat["keypoints"] = ["a", "b"]
    coco_json.write_text(json.dumps(coco))
    with pytest.raises(InputError, match="lack skeleton keypoint"):
        M.load_ground_truth(coco_json, sk)


def test_shared_categories_are_evaluated_together(tmp_path):
    """AP-10K style: several categories with one keypoint list are one object class."""
    sk = sk_named("object5")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2)
    coco["categories"].append({**coco["categories"][0], "id": 8, "name": "other"})
    for a in coco["annotations"][::2]:
        a["category_id"] = 8
    coco_json.write_text(json.dumps(coco))
    res = E.evaluate(GTModel(sk, coco, images), sk, coco_json, images)
    assert res["settings"]["categories_merged"] is True and res["AP"] > 0.97
    res = E.evaluate(GTModel(sk, coco, images), sk, coco_json, images, category_id=8)
    assert res["settings"]["category_ids"] == [8]
    assert res["AR"] > 0.97 and res["AP"] < 0.9  # the other category's detections are false positives


# ------------------------------------------------------------------ real data (../shared)
def _connected_to_root(sk, labelled: set[int]) -> bool:
    seen, stack = {sk.root} & labelled, [sk.root] if sk.root in labelled else []
    while stack:
        k = stack.pop()
        for a, b in sk.limbs:
            for u, v in ((a, b), (b, a)):
                if u == k and v in labelled and v not in seen:
                    seen.add(v)
                    stack.append(v)
    return seen == labelled


@pytest.mark.parametrize("folder,template,min_ap", [("coco", "openpose18", 0.95), ("ap10k", "quadruped17", 0.95),
                                                    ("onehand10k", "hand21", None)])
def test_ground_truth_maps_on_real_data(shared_real, folder, template, min_ap):
    """Real annotations (crowded people, animals, hands). Every instance whose labelled keypoints
    hang together from the root through labelled keypoints is recovered whole; an instance with a
    gap (onehand10k's 9.jpg has no wrist) falls apart into pieces, which is what bottom-up grouping
    does with such maps, so onehand10k has no AP bound. In COCO's crowds overlapping people share
    PAF cells (the later one wins), so one person in ten may still come out in pieces."""
    sk = sk_named(template)
    d = shared_real / folder
    coco_json = next(d.glob("*.json"))
    coco = json.loads(coco_json.read_text())
    res = E.evaluate(GTModel(sk, coco, d), sk, coco_json, d)
    if min_ap is not None:
        assert res["AP"] >= min_ap, (res["AP"], res["AR"])
    assert {r["image_id"] for r in res["results"]} <= {im["id"] for im in coco["images"]}
    names = coco["categories"][0]["keypoints"]
    src = sk.source_index(names)
    whole, recovered = 0, 0
    for a in coco["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        if a.get("iscrowd") or not (kp[:, 2] > 0).any():
            continue
        lab_sk = {i for i in range(sk.num_keypoints) if src[i] >= 0 and kp[src[i], 2] > 0}
        for dv in sk.derived:  # a derived keypoint is there when all its sources are
            if all(sk.index(s) in lab_sk for s in dv.mean_of):
                lab_sk.add(sk.index(dv.name))
        if not _connected_to_root(sk, lab_sk):
            continue
        lab = kp[:, 2] > 0
        dets = [np.asarray(r["keypoints"]).reshape(-1, 3) for r in res["results"] if r["image_id"] == a["image_id"]]
        recovered += any(((dk[lab, 2] > 0) & (np.abs(dk[lab, :2] - kp[lab, :2]).max(1) <= 3)).all() for dk in dets)
        whole += 1
    assert whole >= 1 and recovered >= 0.9 * whole, (recovered, whole)


# ------------------------------------------------------------------ commands
@pytest.fixture
def stand_in(monkeypatch):
    """Make the CLI's checkpoint loader return the ground-truth stand-in."""
    holder: dict = {}

    def fake_load(checkpoint, sk, device="cpu", backend="auto"):
        return P.LoadedModel(holder["model"], "ground-truth stand-in", sk, None, "torch")

    monkeypatch.setattr(E, "load_model", fake_load)
    return holder


def test_cli_val_writes_tables_results_and_overlays(tmp_path, runner, stand_in):
    sk = sk_named("openpose18")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2)
    stand_in["model"] = GTModel(sk, coco, images)
    out = tmp_path / "out"
    args = ["val", "--skeleton", "openpose18", "--checkpoint", "unused.pt", "--coco", str(coco_json),
            "--images", str(images), "-o", str(out), "--flip"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "AP50" in r.output and "left_shoulder" in r.output and "per keypoint" in r.output
    results = json.loads((out / "results.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(results) == 8 and metrics["AP"] > 0.97
    pngs = sorted(out.glob("overlay_*.png"))
    assert [p.name for p in pngs] == ["overlay_1000.png", "overlay_1037.png"]
    img = cv2.imread(str(pngs[0]))
    assert img.shape == (300, 420, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 10
    r = runner.invoke(cli, args)
    assert r.exit_code == 2 and "exists" in r.output
    assert runner.invoke(cli, args + ["--force"]).exit_code == 0


def _tiny_checkpoint(path: Path, sk) -> Path:
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint), path)
    return path


def test_cli_val_infer_export_with_a_real_checkpoint(tmp_path, runner):
    sk = sk_named("object5")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2, h=120, w=160)
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt", sk)
    r = runner.invoke(cli, ["val", "--skeleton", "object5", "--checkpoint", str(ckpt), "--coco", str(coco_json),
                            "--images", str(images), "--input-size", "128"])
    assert r.exit_code == 0, r.output
    assert "posedata checkpoint" in r.output and "AP" in r.output
    # infer on a folder: a PNG per image and a COCO dataset that posedata reads back
    out = tmp_path / "inf"
    r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "--skeleton", "object5", "-o", str(out),
                            "--input-size", "128"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_a.png", "frame_b.png"]
    from posedata.coco import load

    ds = load(out / "results.json")
    assert [im.file_name for im in ds.images] == ["frame_a.png", "frame_b.png"]
    assert ds.categories[0].keypoints == list(sk.coco_keypoints)
    # ONNX: written only after onnxruntime agrees with PyTorch
    onnx_path = tmp_path / "m.onnx"
    r = runner.invoke(cli, ["export", "onnx", "--checkpoint", str(ckpt), "--skeleton", "object5", "-o", str(onnx_path),
                            "--input-size", "96"])
    assert r.exit_code == 0, r.output
    assert "max |difference|" in r.output and onnx_path.stat().st_size > 1000
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    heat, pafs = sess.run(None, {"image": np.zeros((1, 3, 64, 80), np.float32)})
    assert heat.shape == (1, 6, 8, 10) and pafs.shape == (1, 8, 8, 10)


def test_cli_val_and_infer_take_the_demos_scales(tmp_path, runner, monkeypatch):
    """The demo evaluates at heights 128/136/144 averaged; `val` and `infer` reproduce that with
    --scales (the maps of each multiple of the input height averaged, as detect does)."""
    import trainer.evaluate as E

    sk = sk_named("object5")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2, h=120, w=160)
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt", sk)
    seen, detect = [], E.detect
    monkeypatch.setattr(E, "detect", lambda *a: (seen.append(a[8]), detect(*a))[1])
    r = runner.invoke(cli, ["val", "--skeleton", "object5", "--checkpoint", str(ckpt), "--coco", str(coco_json),
                            "--images", str(images), "--input-size", "136", "--scales", "0.9412,1,1.0588",
                            "-o", str(tmp_path / "val")])
    assert r.exit_code == 0, r.output
    assert "heights 128/136/144" in r.output and seen == [(0.9412, 1.0, 1.0588)] * 2
    assert json.loads((tmp_path / "val" / "metrics.json").read_text())["settings"]["scales"] == [0.9412, 1.0, 1.0588]
    r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "--skeleton", "object5", "-o",
                            str(tmp_path / "inf"), "--input-size", "64", "--scales", "0.5,1"])
    assert r.exit_code == 0 and seen[2:] == [(0.5, 1.0)] * 2, r.output
    for bad in (["--scales", "0,1"], ["--scales", "1,x"], ["--scales", "1", "--multiscale"]):
        r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "-o", str(tmp_path / "no")] + bad)
        assert r.exit_code == 2 and "--scales" in r.output and not (tmp_path / "no").exists(), r.output


def test_cli_bad_inputs_are_located_with_exit_2(tmp_path, runner):
    sk = sk_named("object5")
    coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2, h=120, w=160)
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt", sk)
    base = ["val", "--coco", str(coco_json), "--images", str(images), "--input-size", "64"]
    r = runner.invoke(cli, base + ["--skeleton", "object5", "--checkpoint", str(tmp_path / "nope.pt")])
    assert r.exit_code == 2 and "nope.pt" in r.output and "not found" in r.output
    r = runner.invoke(cli, base + ["--skeleton", "hand21", "--checkpoint", str(ckpt)])
    assert r.exit_code == 2 and "fingerprint" in r.output and "tiny.pt" in r.output
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    r = runner.invoke(cli, base + ["--skeleton", "object5", "--checkpoint", str(tmp_path / "junk.pt")])
    assert r.exit_code == 2 and "junk.pt" in r.output and "Traceback" not in r.output
    (images / "frame_b.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "o"
    r = runner.invoke(cli, base + ["--skeleton", "object5", "--checkpoint", str(ckpt), "-o", str(out)])
    assert r.exit_code == 2 and "images[1].file_name" in r.output and "cannot decode" in r.output
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    (images / "frame_b.png").unlink()
    r = runner.invoke(cli, base + ["--skeleton", "object5", "--checkpoint", str(ckpt)])
    assert r.exit_code == 2 and "images[1].file_name" in r.output and "not found" in r.output
    coco["images"][0]["file_name"] = "../escape.png"
    coco_json.write_text(json.dumps(coco))
    r = runner.invoke(cli, base + ["--skeleton", "object5", "--checkpoint", str(ckpt)])
    assert r.exit_code == 2 and "images[0].file_name" in r.output
    r = runner.invoke(cli, ["infer", str(tmp_path / "missing_dir"), "--checkpoint", str(ckpt), "--skeleton", "object5",
                            "-o", str(out)])
    assert r.exit_code == 2 and "missing_dir" in r.output


def test_reference_checkpoint_layout_loads_when_heads_fit(tmp_path):
    """A bare reference-layout state dict (no posedata header) loads if its heads fit the skeleton;
    its refinement stages and width come from the tensors (a width-0.25, 2-stage dict was refused
    as "does not fit" before)."""
    from trainer.model import for_skeleton

    sk = sk_named("object5")
    torch.manual_seed(0)
    x = torch.zeros(1, 3, 64, 64)
    for stages, width in ((1, 1.0), (2, 0.25)):
        full = for_skeleton(sk, stages=stages, width=width)
        torch.save({"state_dict": full.state_dict()}, tmp_path / "full.pth")
        loaded = E.load_model(tmp_path / "full.pth", sk)
        assert f"{stages} refinement stage(s), width {width}" in loaded.description and not loaded.model.training
        assert loaded.input_size is None and loaded.choose_input_size(None) == (368, loaded.choose_input_size(None)[1])
        with torch.inference_mode():
            assert torch.equal(loaded.model(x)[-1], full.eval()(x)[-1])
    with pytest.raises(InputError, match="does not fit skeleton"):
        E.load_model(tmp_path / "full.pth", sk_named("hand21"))
    with pytest.raises(InputError, match="give --skeleton"):
        E.load_model(tmp_path / "full.pth", None)


def test_cli_export_reference_tables(runner):
    r = runner.invoke(cli, ["export", "reference", "--skeleton", "openpose18"])
    assert r.exit_code == 0, r.output
    assert "BODY_PARTS_KPT_IDS = [[1, 8], [1, 11], [1, 2]" in r.output
    assert "right = [2, 3, 4, 8, 9, 10, 14, 16]" in r.output and "left = [5, 6, 7, 11, 12, 13, 15, 17]" in r.output
    assert "num_heatmaps = 19" in r.output and "num_pafs = 38" in r.output
    assert "to_coco_map = [0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]" in r.output


def test_val_ap_equals_pycocotools_on_its_results_file(shared_real, tmp_path, runner, stand_in):
    """`posedata val -o` on real COCO photos: its AP, AP50 and AR equal pycocotools' own COCOeval
    run on the ground-truth file as given and the results.json val wrote (COCO's default sigmas,
    which openpose18 carries). Keypoints are jittered so AP is neither 0 nor 1."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class Jittered(GTModel):
        def identify(self, content):
            kps, hw, mirrored = super().identify(content)
            rng = np.random.default_rng(int(hw[0] * 7 + hw[1]))
            noisy = kps.copy()
            noisy[:, :, :2] += rng.normal(0, 3.0, noisy[:, :, :2].shape)
            return noisy, hw, mirrored

    sk = sk_named("openpose18")
    d = shared_real / "coco"
    coco_json = next(d.glob("*.json"))
    stand_in["model"] = Jittered(sk, json.loads(coco_json.read_text()), d)
    out = tmp_path / "out"
    r = runner.invoke(cli, ["val", "--skeleton", "openpose18", "--checkpoint", "unused.pt", "--coco", str(coco_json),
                            "--images", str(d), "-o", str(out), "--input-size", "368"])
    assert r.exit_code == 0, r.output
    ours = json.loads((out / "metrics.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_json))
        ev = COCOeval(gt, gt.loadRes(str(out / "results.json")), "keypoints")
        np.testing.assert_allclose(ev.params.kpt_oks_sigmas, ours["settings"]["sigmas"], atol=1e-12)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert 0.05 < ours["AP"] < 0.95, ours["AP"]
    for i, k in enumerate(("AP", "AP50", "AP75", "APm", "APl", "AR")):
        assert ours[k] == pytest.approx(float(ev.stats[i]), abs=1e-12), k
