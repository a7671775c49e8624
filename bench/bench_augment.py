"""Whole training sample (decode, crowd mask, augment, targets, network input) on real photographs:
posedata's trainer path vs a step-by-step re-implementation of the reference trainer's pipeline.

Run: .venv/bin/python bench/bench_augment.py [--quick] [--coco DIR]

Data: ../shared/data/real/coco (*.jpg + test_coco.json), openpose18. Both sides start from the same
COCO JSON, each in its own form:
- the reference: the records its label script makes (posedata.formats.lwop.lwop_records, equal to
  its pickle), run through its per-sample steps as its code does them: deep copy of the record;
  cv2.imread; float mask of ones with every crowd RLE zeroed; keypoint clean-up and the reorder to
  18 points with the neck, for the main person and every other person; cv2.resize of image and
  mask; cv2.warpAffine of both onto the enlarged rotation canvas, the points rotated one by one;
  crop/pad by array copies into a uint8 crop and mask; cv2.flip and the left/right swap;
  INTER_AREA mask to the map; heatmaps and PAFs one cell at a time; the 57 per-channel mask
  copies; (pixel - 128) / 256.
- posedata: the label file `posedata convert` makes (posedata.convert.to_labels), through what the
  trainer runs: trainer.data.PoseDataset.__getitems__ -> posedata.augment.training_batch (one
  sample per call: training_sample + to_network_input, what __getitem__ does).
Both get the same random draws (draw_params from the same seed) for the same (record, seed), so the
samples are compared as well as timed.

Timing: every pipeline runs in a process of its own (this script with --worker), so no pipeline
inherits another's heap: glibc's allocator state (which large blocks it keeps or returns to the
system) changes per-sample times by up to ~40% here. The processes alternate, three rounds each,
so they share the machine's load. One core each (cv2.setNumThreads(1), OMP/OPENBLAS/MKL 1);
per-sample times are process CPU time (time.process_time); a batch's time is divided by its size.
Per sample (batch 1) is what one __getitem__ call makes. Per batch of B is what a training step
receives: for the reference, its B samples stacked into batch arrays as torch's default collate does
(np.stack of each field here, the same copies); for posedata, training_batch, which writes each
sample into the batch arrays directly (the trainer's __getitems__).
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_targets import cellwise_heatmaps, cellwise_pafs  # noqa: E402

from posedata import skeleton as skmod  # noqa: E402
from posedata.augment import (  # noqa: E402
    AugmentConfig,
    Draw,
    Scratch,
    draw_params,
    reduction,
    to_network_input,
    training_batch,
    training_sample,
)
from posedata.convert import to_labels  # noqa: E402
from posedata.formats.lwop import lwop_records  # noqa: E402
from posedata.images import decode_image  # noqa: E402
from posedata.io import load_json  # noqa: E402

cv2.setNumThreads(1)
BATCHES = (1, 8, 16, 80)
MODES = tuple(f"{who}-{b}" for b in BATCHES for who in ("reference", "posedata"))


# ------------------------------------------------------------------------------------ data
def coco_data(coco_dir: Path, crowd: bool) -> dict:
    """The COCO JSON; with crowd=True, plus one crowd region (an uncompressed RLE, as COCO stores
    crowds) beside every person, to exercise the mask path."""
    data = load_json(coco_dir / "test_coco.json")
    if crowd:
        images = {im["id"]: im for im in data["images"]}
        extra = []
        for a in data["annotations"]:
            if a.get("iscrowd") or not a.get("num_keypoints"):
                continue
            im = images[a["image_id"]]
            w, h = im["width"], im["height"]
            x, y, bw, bh = a["bbox"]
            cx, cy = int(min(x + bw + 10, w - 70)), int(min(y + bh / 3, h - 80))
            m = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(m, np.array([[cx, cy], [cx + 60, cy + 5], [cx + 50, cy + 70], [cx - 5, cy + 60]]), 1)
            extra.append({"id": 900000 + len(extra), "image_id": a["image_id"], "category_id": a["category_id"],
                          "iscrowd": 1, "area": int(m.sum()), "bbox": [cx - 5, cy, 65, 70], "num_keypoints": 0,
                          "keypoints": [0] * len(a["keypoints"]), "segmentation": rle_counts(m)})
        data["annotations"] = data["annotations"] + extra
    return data


def rle_counts(m: np.ndarray) -> dict:
    """Uncompressed COCO RLE of a 0/1 mask: run lengths in column-major order, zeros first."""
    flat = m.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]]))
    counts = ([0] if flat[0] else []) + runs.tolist()
    return {"counts": counts, "size": list(m.shape)}


def paired_samples(data: dict, sk) -> tuple[list, object]:
    """The reference's records and posedata's label file for the same JSON, record i = sample i."""
    records = lwop_records(data)
    labels = to_labels(data, sk)
    assert len(records) == labels.num_samples, (len(records), labels.num_samples)
    for i, rec in enumerate(records):
        s = labels.sample(i)
        assert rec["img_paths"] == s["file_name"]
        assert np.allclose(rec["objpos"], s["objpos"]) and np.isclose(rec["scale_provided"], s["scale_provided"])
    return records, labels


def jobs(n_samples: int, rounds: int) -> list[tuple[int, int]]:
    """(sample index, seed) pairs: every sample once per round, each round with other draws."""
    return [(i, 1000 * r + i) for r in range(rounds) for i in range(n_samples)]


# -------------------------------------------------------------------------- the reference
def reference_sample(images: Path, record: dict, d: Draw, sk, cfg: AugmentConfig, coco_names: list) -> dict:
    from pycocotools import mask as mask_utils

    label = copy.deepcopy(record)  # its transforms change the record
    image = cv2.imread(str(images / label["img_paths"]), cv2.IMREAD_COLOR)
    mask = np.ones((label["img_height"], label["img_width"]), dtype=np.float32)
    for seg in label["segmentations"]:
        rle = mask_utils.frPyObjects(seg, mask.shape[0], mask.shape[1])
        mask[mask_utils.decode(rle) > 0.5] = 0
    others = label["processed_other_annotations"]

    # keypoint clean-up, then the 18-point order with the neck (the mean of the shoulders)
    h, w = image.shape[:2]
    src = sk.source_index(coco_names)
    shoulders = [coco_names.index("left_shoulder"), coco_names.index("right_shoulder")]
    neck = sk.index("neck")

    def convert(kps: list) -> list:
        for p in kps:
            if p[0] == p[1] == 0:
                p[2] = 2
            if p[0] < 0 or p[0] >= w or p[1] < 0 or p[1] >= h:
                p[2] = 2
        out = [kps[j] if j >= 0 else None for j in src]
        a, b = kps[shoulders[0]], kps[shoulders[1]]
        n = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, 0]
        if a[2] == 2 or b[2] == 2:
            n[2] = 2
        elif a[2] == 1 and b[2] == 1:
            n[2] = 1
        if n[0] < 0 or n[0] >= w or n[1] < 0 or n[1] >= h:
            n[2] = 2
        out[neck] = n
        return out

    label["keypoints"] = convert(label["keypoints"])
    for o in others:
        o["keypoints"] = convert(o["keypoints"])

    def all_points():
        yield from label["keypoints"]
        for o in others:
            yield from o["keypoints"]

    # scale
    s = cfg.target_dist / label["scale_provided"] * d.scale_multiplier
    image = cv2.resize(image, dsize=(0, 0), fx=s, fy=s)
    mask = cv2.resize(mask, dsize=(0, 0), fx=s, fy=s)
    label["img_height"], label["img_width"] = image.shape[:2]
    label["objpos"][0] *= s
    label["objpos"][1] *= s
    for o in others:
        o["objpos"][0] *= s
        o["objpos"][1] *= s
    for p in all_points():
        p[0] *= s
        p[1] *= s

    # rotate onto the enlarged canvas
    h, w = image.shape[:2]
    centre = (w / 2, h / 2)
    rot = cv2.getRotationMatrix2D(centre, d.degree, 1)
    c, sn = abs(rot[0, 0]), abs(rot[0, 1])
    bw, bh = int(h * sn + w * c), int(h * c + w * sn)
    rot[0, 2] += bw / 2 - centre[0]
    rot[1, 2] += bh / 2 - centre[1]
    image = cv2.warpAffine(image, rot, dsize=(bw, bh), borderMode=cv2.BORDER_CONSTANT,
                           borderValue=(cfg.pad, cfg.pad, cfg.pad))
    label["img_height"], label["img_width"] = image.shape[:2]
    mask = cv2.warpAffine(mask, rot, dsize=(bw, bh), borderMode=cv2.BORDER_CONSTANT, borderValue=(1, 1, 1))

    def turn(p):
        return [rot[0, 0] * p[0] + rot[0, 1] * p[1] + rot[0, 2], rot[1, 0] * p[0] + rot[1, 1] * p[1] + rot[1, 2]]

    label["objpos"] = turn(label["objpos"])
    for p in all_points():
        q = turn([p[0], p[1]])
        p[0], p[1] = q[0], q[1]

    # crop / pad
    cw, ch = cfg.crop_w, cfg.crop_h
    sx, sy = label["objpos"][0] + d.offset_x, label["objpos"][1] + d.offset_y
    left, up = -int(sx - cw / 2), -int(sy - ch / 2)
    crop = np.empty((ch, cw, 3), dtype=np.uint8)
    for i in range(3):
        crop[:, :, i].fill(cfg.pad)
    cmask = np.empty((ch, cw), dtype=np.uint8)
    cmask.fill(1)
    ix0, iy0 = int(sx - cw / 2), int(sy - ch / 2)
    ix1, iy1 = ix0 + cw, iy0 + ch
    cx0, cy0, cx1, cy1 = 0, 0, cw, ch
    w, h = label["img_width"], label["img_height"]
    ok = True
    if ix0 < 0:
        cx0 -= ix0
        ix0 = 0
    if ix0 >= w:
        ok = False
    if iy0 < 0:
        cy0 -= iy0
        iy0 = 0
    if iy0 >= w:  # sic: the reference compares with the width here
        ok = False
    if ix1 > w:
        cx1 -= ix1 - w
        ix1 = w
    if ix1 < 0:
        ok = False
    if iy1 > h:
        cy1 -= iy1 - h
        iy1 = h
    if iy1 < 0:
        ok = False
    if ok:
        crop[cy0:cy1, cx0:cx1] = image[iy0:iy1, ix0:ix1]
        cmask[cy0:cy1, cx0:cx1] = mask[iy0:iy1, ix0:ix1]
    label["objpos"][0] += left
    label["objpos"][1] += up
    for p in all_points():
        p[0] += left
        p[1] += up

    # flip
    if d.flip:
        crop = cv2.flip(crop, 1)
        cmask = cv2.flip(cmask, 1)
        label["objpos"][0] = cw - 1 - label["objpos"][0]
        for inst in [label] + others:
            for p in inst["keypoints"]:
                p[0] = cw - 1 - p[0]
            inst["keypoints"] = [inst["keypoints"][j] for j in sk.flip]

    insts = [label["keypoints"]] + [o["keypoints"] for o in others]
    map_mask = cv2.resize(cmask, dsize=None, fx=1 / cfg.stride, fy=1 / cfg.stride, interpolation=cv2.INTER_AREA)
    mh, mw = ch // cfg.stride, cw // cfg.stride
    heat = cellwise_heatmaps(insts, sk.num_keypoints, mh, mw, cfg.stride, cfg.sigma)
    heat_mask = np.zeros(heat.shape, dtype=np.float32)
    for i in range(heat.shape[0]):
        heat_mask[i] = map_mask
    pafs = cellwise_pafs(insts, [tuple(x) for x in sk.limbs], mh, mw, cfg.stride, cfg.paf_thickness)
    paf_mask = np.zeros(pafs.shape, dtype=np.float32)
    for i in range(pafs.shape[0]):
        paf_mask[i] = map_mask
    net = (crop.astype(np.float32) - 128) / 256
    return {"image": crop, "input": net.transpose((2, 0, 1)), "mask": map_mask.astype(np.float32),
            "keypoints": np.array(insts, dtype=np.float64), "heatmaps": heat, "pafs": pafs,
            "heat_mask": heat_mask, "paf_mask": paf_mask, "crop_mask": cmask}


# ---------------------------------------------------------------------------- one pipeline
def worker(mode: str, coco_dir: Path, crowd: bool, rounds: int) -> None:
    """Time one pipeline in this (fresh) process; print per-sample CPU times as JSON."""
    sk = skmod.resolve("openpose18")
    cfg = AugmentConfig()
    data = coco_data(coco_dir, crowd)
    records, labels = paired_samples(data, sk)
    names = data["categories"][0]["keypoints"]
    todo = jobs(labels.num_samples, rounds)
    times: list[float] = []
    decode: dict[str, list[float]] = {"imread": [], "posedata": []}
    scratch = Scratch()  # what PoseDataset keeps per worker
    who, size = mode.split("-")[0], int(mode.split("-")[1])
    if who == "reference":
        def make(chunk):
            items = [reference_sample(coco_dir, records[i], draw_params(cfg, np.random.default_rng(seed)), sk, cfg,
                                      names) for i, seed in chunk]
            if size > 1:  # the collate: every field stacked into one batch array
                # (its item keeps the crop-sized uint8 mask under "mask"; the map mask is a local)
                return {k: np.stack([it[k] for it in items]) for k in ("input", "heatmaps", "pafs", "heat_mask",
                                                                       "paf_mask", "crop_mask")}
            return items[0]
    elif size == 1:
        def make(chunk):
            (i, seed), = chunk
            s = training_sample(labels, i, coco_dir, sk, cfg, np.random.default_rng(seed), scratch=scratch)
            return to_network_input(s.crop), s
    else:
        def make(chunk):
            return training_batch(labels, [(i, np.random.default_rng(seed)) for i, seed in chunk], coco_dir, sk, cfg,
                                  scratch=scratch)
    make(todo[:size])  # warm-up: imports, caches
    for b0 in range(0, len(todo) - size + 1, size):
        chunk = todo[b0:b0 + size]
        t = time.process_time()
        make(chunk)
        times.extend([(time.process_time() - t) / size] * size)
    if size == 1:  # the decode alone
        for i, seed in todo[: 4 * labels.num_samples]:
            rec = labels.sample(i)
            t = time.process_time()
            if who == "reference":
                cv2.imread(str(coco_dir / rec["file_name"]), cv2.IMREAD_COLOR)
                decode["imread"].append(time.process_time() - t)
            else:
                d = draw_params(cfg, np.random.default_rng(seed))
                decode_image(coco_dir / rec["file_name"],
                             reduction(cfg.target_dist / rec["scale_provided"] * d.scale_multiplier),
                             channels=4, scratch=scratch)
                decode["posedata"].append(time.process_time() - t)
    print(json.dumps({"times": times, "decode": decode}))


def run_workers(coco_dir: Path, crowd: bool, n_samples: int, rounds: int, repeats: int) -> dict[str, dict]:
    """Every pipeline in a fresh process, alternating, repeats times."""
    out: dict[str, dict] = {m: {"times": [], "decode": {"imread": [], "posedata": []}} for m in MODES}
    for _ in range(repeats):
        for mode in MODES:
            if int(mode.split("-")[1]) > rounds * n_samples:  # not one whole batch
                continue
            cmd = [sys.executable, __file__, "--worker", mode, "--coco", str(coco_dir), "--rounds", str(rounds)]
            if crowd:
                cmd.append("--crowd")
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            out[mode]["times"].extend(res["times"])
            for k, v in res["decode"].items():
                out[mode]["decode"][k].extend(v)
    return out


# ------------------------------------------------------------------------- same draws check
def compare(coco_dir: Path, crowd: bool, rounds: int) -> str:
    """Same draws -> the same sample, up to the interpolation (one warp instead of two)."""
    sk = skmod.resolve("openpose18")
    cfg = AugmentConfig()
    data = coco_data(coco_dir, crowd)
    records, labels = paired_samples(data, sk)
    names = data["categories"][0]["keypoints"]
    kp_err = heat_err = paf_err = 0.0
    img_mad, img_big, mask_cells, mask_total, reduced = [], [], 0, 0, 0
    for i, seed in jobs(labels.num_samples, rounds):
        d = draw_params(cfg, np.random.default_rng(seed))
        ref = reference_sample(coco_dir, records[i], d, sk, cfg, names)
        ours = training_sample(labels, i, coco_dir, sk, cfg, np.random.default_rng(seed))
        reduced += reduction(cfg.target_dist / labels.sample(i)["scale_provided"] * d.scale_multiplier) > 1
        k_ref, k_pd = ref["keypoints"], ours.keypoints.astype(np.float64)
        assert k_ref.shape == k_pd.shape and (k_ref[..., 2] == k_pd[..., 2]).all()
        lab = k_ref[..., 2] <= 1
        kp_err = max(kp_err, float(np.abs(k_ref[..., :2] - k_pd[..., :2])[lab].max(initial=0)))
        heat_err = max(heat_err, float(np.abs(ref["heatmaps"] - ours.heatmaps).max()))
        paf_err = max(paf_err, float(np.abs(ref["pafs"] - ours.pafs).max()))
        diff = np.abs(ref["image"].astype(np.int16) - ours.image.astype(np.int16))
        img_mad.append(diff.mean())
        img_big.append((diff > 16).mean())
        mask_cells += int((ref["mask"] != ours.mask).sum())
        mask_total += ours.mask.size
        assert np.array_equal(to_network_input(ours.crop), to_network_input(ours.image))
    n = len(img_mad)
    return (f"  same draws, {n} samples ({reduced} decoded at 1/2-1/8): keypoints max |diff| {kp_err:.2e} px; "
            f"heatmaps max |diff| {heat_err:.2e}; PAFs max |diff| {paf_err:.2e}\n"
            f"  image: mean |diff| {np.mean(img_mad):.2f} grey levels, {100 * np.mean(img_big):.2f}% of values "
            f"differ by > 16 (one bilinear interpolation instead of two)\n"
            f"  mask: {mask_cells} of {mask_total} map cells differ ({100 * mask_cells / max(mask_total, 1):.3f}%)")


def report(label: str, res: dict[str, dict], check: str) -> None:
    print(f"[{label}] per-sample process CPU time, each pipeline in its own process")
    print(f"  {'':<24} {'reference':>20} {'posedata':>20} {'ratio':>18}")
    print(f"  {'':<24} {'median':>9} {'mean':>10} {'median':>9} {'mean':>10} {'medians':>9} {'means':>8}")
    for size in BATCHES:
        r, p = (np.array(res[f"{w}-{size}"]["times"]) * 1e3 for w in ("reference", "posedata"))
        if not (r.size and p.size):
            continue
        name = "one sample per call" if size == 1 else f"batches of {size}"
        print(f"  {name:<24} {np.median(r):>7.2f}ms {r.mean():>8.2f}ms {np.median(p):>7.2f}ms {p.mean():>8.2f}ms "
              f"{np.median(r) / np.median(p):>8.2f}x {r.mean() / p.mean():>7.2f}x")
    imread = np.median(res["reference-1"]["decode"]["imread"]) * 1e3
    ours = np.median(res["posedata-1"]["decode"]["posedata"]) * 1e3
    print(f"  decode alone, median: cv2.imread {imread:.2f} ms (the reference's); posedata's decode_image "
          f"(libjpeg-turbo via simplejpeg into a reused buffer, reduced when the draw allows) {ours:.2f} ms")
    print(check)


def main() -> None:
    argv = sys.argv
    coco_dir = Path(argv[argv.index("--coco") + 1]) if "--coco" in argv else \
        HERE.parent.parent / "shared" / "data" / "real" / "coco"
    if "--worker" in argv:
        worker(argv[argv.index("--worker") + 1], coco_dir, "--crowd" in argv, int(argv[argv.index("--rounds") + 1]))
        return
    quick = "--quick" in argv
    rounds = 2 if quick else 20  # 12 samples here: 240 per process, three batches of 80
    repeats = 1 if quick else 3
    n = paired_samples(coco_data(coco_dir, False), skmod.resolve("openpose18"))[1].num_samples
    print(f"{coco_dir}: {n} training samples; openpose18, 368x368, stride 8; one core per pipeline; "
          f"{rounds} draws per sample, {repeats} alternating runs of every pipeline")
    for crowd, label in ((False, "real COCO images (no crowd regions in this file)"),
                         (True, "same images + one synthetic crowd RLE beside every person")):
        res = run_workers(coco_dir, crowd, n, rounds if not crowd else max(1, rounds // 2), repeats)
        report(label, res, compare(coco_dir, crowd, 2 if quick else 4))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
