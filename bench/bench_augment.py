"""Whole training sample (decode, crowd mask, augment, targets, network input) on real photographs:
posedata.augment vs a step-by-step re-implementation of the reference trainer's pipeline.

Run: .venv/bin/python bench/bench_augment.py [--quick] [--coco DIR]

Data: ../shared/data/real/coco (*.jpg + test_coco.json). Samples are built from the COCO JSON
here with the reference's label rules (main persons, 18-point order with the derived neck,
clean-up), for the openpose18 skeleton.

Reference pipeline, as its code does it: cv2.imread; float mask of ones with crowd regions zeroed;
deep copy of the label lists; cv2.resize of image and mask by the scale; cv2.warpAffine of both onto
the enlarged rotation canvas; crop/pad by array copies into a uint8 crop and mask; cv2.flip and the
swap; INTER_AREA mask to the map; heatmaps and PAFs one cell at a time; the per-channel mask copies
it builds; (pixel - 128) / 256. posedata: read_image, crowd_mask, make_sample, to_network_input.
Both pipelines get the same random draws (draw_params from the same seed), so the samples can be
compared as well as timed.

One core: cv2.setNumThreads(1) and OMP/OPENBLAS/MKL threads 1. Per-sample times are this
process's CPU time (time.process_time), which leaves out waiting for a core on a shared machine;
wall-clock medians are printed too.
"""
from __future__ import annotations

import copy
import os
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
    add_targets,
    decode_image,
    draw_params,
    make_sample,
    reduction,
    to_network_input,
)
from posedata.io import load_json  # noqa: E402
from posedata.targets import crowd_mask  # noqa: E402

cv2.setNumThreads(1)


# ----------------------------------------------------------------------------- label records
def build_records(coco_dir: Path, sk, extra_crowd: bool = False) -> list[dict]:
    """The reference's training samples from a COCO JSON, keypoints in skeleton order."""
    data = load_json(coco_dir / "test_coco.json")
    cat = data["categories"][0]
    src = sk.source_index(cat["keypoints"])
    derived = [(sk.index(d.name), [sk.index(m) for m in d.mean_of]) for d in sk.derived]
    images = {im["id"]: im for im in data["images"]}
    by_image: dict[int, list] = {}
    crowd: dict[int, list] = {}
    for ann in data["annotations"]:
        if ann.get("iscrowd"):
            crowd.setdefault(ann["image_id"], []).append(ann["segmentation"])
        elif ann["num_keypoints"] > 0:
            by_image.setdefault(ann["image_id"], []).append(ann)
    records = []
    for image_id, anns in by_image.items():
        im = images[image_id]
        w, h = im["width"], im["height"]

        def convert(ann, w=w, h=h):
            raw = np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            vis = np.select([raw[:, 2] == 2, raw[:, 2] == 1], [1.0, 0.0], 2.0)
            bad = ((raw[:, 0] == 0) & (raw[:, 1] == 0)) | (raw[:, 0] < 0) | (raw[:, 0] >= w) | \
                (raw[:, 1] < 0) | (raw[:, 1] >= h)
            vis[bad] = 2
            kp = np.zeros((sk.num_keypoints, 3))
            have = src >= 0
            kp[have, :2] = raw[src[have], :2]
            kp[have, 2] = vis[src[have]]
            for i, ms in derived:  # the reference's neck rule
                kp[i, :2] = kp[ms, :2].mean(axis=0)
                v = kp[ms, 2]
                kp[i, 2] = 2 if (v == 2).any() else (1 if (v == 1).all() else 0)
                x, y = kp[i, :2]
                if not (0 <= x < w and 0 <= y < h):
                    kp[i, 2] = 2
            return kp

        kps = [convert(a) for a in anns]
        centres = [np.array([a["bbox"][0] + a["bbox"][2] / 2, a["bbox"][1] + a["bbox"][3] / 2]) for a in anns]
        accepted: list[int] = []
        for i, a in enumerate(anns):
            if a["num_keypoints"] < 5 or a["area"] < 32 * 32:
                continue
            if any(np.linalg.norm(centres[i] - centres[j]) < 0.3 * anns[j]["bbox"][2] for j in accepted):
                continue
            accepted.append(i)
            segs = list(crowd.get(image_id, []))
            if extra_crowd:  # a synthetic crowd region beside the person, to exercise the mask path
                x, y, bw, bh = a["bbox"]
                cx, cy = min(x + bw + 10, w - 30), min(y + bh / 3, h - 30)
                segs.append([[cx, cy, cx + 60, cy + 5, cx + 50, cy + 70, cx - 5, cy + 60]])
            records.append({
                "file": im["file_name"], "width": w, "height": h,
                "keypoints": np.stack([kps[i]] + [kps[j] for j in range(len(anns)) if j != i]),
                "objpos": centres[i], "scale_provided": a["bbox"][3] / 368, "crowd": segs,
            })
    return records


# -------------------------------------------------------------------------- the reference
def reference_sample(path: Path, rec: dict, d: Draw, sk, cfg: AugmentConfig) -> dict:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    mask = np.ones((rec["height"], rec["width"]), dtype=np.float32)
    if rec["crowd"]:
        from pycocotools import mask as mask_utils

        for seg in rec["crowd"]:
            rle = mask_utils.frPyObjects(seg, mask.shape[0], mask.shape[1])
            mask[mask_utils.decode(rle).max(axis=2) > 0.5] = 0
    label = copy.deepcopy({"objpos": list(rec["objpos"]), "scale_provided": rec["scale_provided"],
                           "instances": rec["keypoints"].tolist()})
    insts = label["instances"]

    # scale
    s = cfg.target_dist / label["scale_provided"] * d.scale_multiplier
    image = cv2.resize(image, dsize=(0, 0), fx=s, fy=s)
    mask = cv2.resize(mask, dsize=(0, 0), fx=s, fy=s)
    label["objpos"] = [label["objpos"][0] * s, label["objpos"][1] * s]
    for inst in insts:
        for p in inst:
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
    mask = cv2.warpAffine(mask, rot, dsize=(bw, bh), borderMode=cv2.BORDER_CONSTANT, borderValue=(1, 1, 1))

    def turn(p):
        return [rot[0, 0] * p[0] + rot[0, 1] * p[1] + rot[0, 2], rot[1, 0] * p[0] + rot[1, 1] * p[1] + rot[1, 2]]

    label["objpos"] = turn(label["objpos"])
    for inst in insts:
        for p in inst:
            p[0], p[1] = turn(p)

    # crop / pad
    cw, ch = cfg.crop_w, cfg.crop_h
    sx, sy = label["objpos"][0] + d.offset_x, label["objpos"][1] + d.offset_y
    left, up = -int(sx - cw / 2), -int(sy - ch / 2)
    crop = np.empty((ch, cw, 3), dtype=np.uint8)
    crop[:] = cfg.pad
    cmask = np.ones((ch, cw), dtype=np.uint8)
    ix0, iy0 = int(sx - cw / 2), int(sy - ch / 2)
    ix1, iy1 = ix0 + cw, iy0 + ch
    cx0, cy0, cx1, cy1 = 0, 0, cw, ch
    h, w = image.shape[:2]
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
    for inst in insts:
        for p in inst:
            p[0] += left
            p[1] += up

    # flip
    if d.flip:
        crop = cv2.flip(crop, 1)
        cmask = cv2.flip(cmask, 1)
        for n, inst in enumerate(insts):
            for p in inst:
                p[0] = cw - 1 - p[0]
            insts[n] = [inst[j] for j in sk.flip]

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
            "keypoints": np.array(insts), "heatmaps": heat, "pafs": pafs}


def posedata_sample(path: Path, rec: dict, rng, sk, cfg: AugmentConfig, targets: bool = True):
    """What posedata.augment.training_sample does for a label-file record: draw, decode (at 1/2,
    1/4 or 1/8 when the drawn scale allows), crowd mask, one warp, targets, network input."""
    d = draw_params(cfg, rng)
    image, w, h = decode_image(path, reduction(cfg.target_dist / rec["scale_provided"] * d.scale_multiplier),
                               channels=4)
    mask = crowd_mask(rec["crowd"], h, w) if rec["crowd"] else None
    sample = make_sample(image, rec["keypoints"], rec["objpos"], rec["scale_provided"], mask, sk, cfg, None,
                         targets=targets, draw=d, source_size=(w, h))
    return sample, to_network_input(sample.crop)


def posedata_batch(jobs: list, sk, cfg: AugmentConfig):
    """The trainer's batch (trainer.data.PoseDataset.__getitems__): every sample without targets,
    then the batch's targets in one call (add_targets)."""
    done = [posedata_sample(path, rec, np.random.default_rng(seed), sk, cfg, targets=False)
            for path, rec, seed in jobs]
    add_targets([s for s, _ in done], sk, cfg)
    return done


# ------------------------------------------------------------------------------------ main
def run(coco_dir: Path, sk, cfg, records, rounds: int, label: str) -> None:
    ref_cpu, ref_wall, pd_cpu, pd_wall, dec_cpu = [], [], [], [], []
    batch_cpu: dict[int, list[float]] = {8: [], 16: []}  # per sample: the batch's CPU time / its size
    kp_err, heat_err, paf_err, img_mad, img_big, mask_cells, mask_total = 0.0, 0.0, 0.0, [], [], 0, 0
    reduced = 0
    jobs = [(coco_dir / rec["file"], rec, 1000 * r + i) for r in range(rounds) for i, rec in enumerate(records)]
    # blocks of 16 samples: each block runs the reference and posedata one sample at a time, then
    # the same samples as one batch of 16 and as two of 8, so all are measured under the same load
    for b0 in range(0, len(jobs), 16):
        block = jobs[b0:b0 + 16]
        single = {}
        for path, rec, seed in block:
            d = draw_params(cfg, np.random.default_rng(seed))
            t0, w0 = time.process_time(), time.perf_counter()
            ref = reference_sample(path, rec, d, sk, cfg)
            t1, w1 = time.process_time(), time.perf_counter()
            ours, _net = posedata_sample(path, rec, np.random.default_rng(seed), sk, cfg)
            t2, w2 = time.process_time(), time.perf_counter()
            cv2.imread(str(path), cv2.IMREAD_COLOR)
            dec_cpu.append(time.process_time() - t2)
            ref_cpu.append(t1 - t0)
            pd_cpu.append(t2 - t1)
            ref_wall.append(w1 - w0)
            pd_wall.append(w2 - w1)
            reduced += reduction(cfg.target_dist / rec["scale_provided"] * d.scale_multiplier) > 1
            single[seed] = ours
            # same draws -> the same sample up to interpolation
            k_ref, k_pd = ref["keypoints"], ours.keypoints.astype(np.float64)
            lab = k_ref[..., 2] <= 1
            kp_err = max(kp_err, float(np.abs(k_ref[..., :2] - k_pd[..., :2])[lab].max(initial=0)))
            assert (k_ref[..., 2] == k_pd[..., 2]).all()
            heat_err = max(heat_err, float(np.abs(ref["heatmaps"] - ours.heatmaps).max()))
            paf_err = max(paf_err, float(np.abs(ref["pafs"] - ours.pafs).max()))
            diff = np.abs(ref["image"].astype(np.int16) - ours.image.astype(np.int16))
            img_mad.append(diff.mean())
            img_big.append((diff > 16).mean())
            mask_cells += int((ref["mask"] != ours.mask).sum())
            mask_total += ours.mask.size
        for size in (16, 8):
            for c0 in range(0, len(block), size):
                chunk = block[c0:c0 + size]
                t0 = time.process_time()
                done = posedata_batch(chunk, sk, cfg)
                batch_cpu[size].extend([(time.process_time() - t0) / len(chunk)] * len(chunk))
                for (_p, _r, seed), (s, _net) in zip(chunk, done, strict=True):  # the batch is exact
                    assert np.array_equal(s.heatmaps, single[seed].heatmaps)
                    assert np.array_equal(s.pafs, single[seed].pafs)
                    assert np.array_equal(s.image, single[seed].image)
    ref_med, pd_med = np.median(ref_cpu) * 1e3, np.median(pd_cpu) * 1e3
    print(f"[{label}] {len(ref_cpu)} samples ({len(records)} records x {rounds} seeds); "
          f"{reduced} decoded at 1/2-1/8 (drawn scale <= 1/2)")
    print(f"  reference pipeline: median {ref_med:.2f} ms CPU ({np.median(ref_wall) * 1e3:.2f} ms wall), "
          f"mean {np.mean(ref_cpu) * 1e3:.2f} ms")
    print(f"  posedata, one sample per call: median {pd_med:.2f} ms CPU ({np.median(pd_wall) * 1e3:.2f} ms wall), "
          f"mean {np.mean(pd_cpu) * 1e3:.2f} ms -> {ref_med / pd_med:.2f}x (medians), "
          f"{np.mean(ref_cpu) / np.mean(pd_cpu):.2f}x (means)")
    for size, times in batch_cpu.items():
        print(f"  posedata, batches of {size:>2} (targets rendered per batch): per sample median "
              f"{np.median(times) * 1e3:.2f} ms, mean {np.mean(times) * 1e3:.2f} ms -> "
              f"{ref_med / (np.median(times) * 1e3):.2f}x (medians), {np.mean(ref_cpu) / np.mean(times):.2f}x (means)")
    dec = np.median(dec_cpu) * 1e3
    print(f"  full-size JPEG decode alone (cv2.imread, as the reference does): median {dec:.2f} ms CPU; "
          f"without it {ref_med - dec:.2f} ms vs {pd_med - dec:.2f} ms = {(ref_med - dec) / (pd_med - dec):.1f}x")
    print(f"  same draws -> keypoints max |diff| {kp_err:.2e} px; heatmaps max |diff| {heat_err:.2e}; "
          f"PAFs max |diff| {paf_err:.2e}")
    print(f"  image: mean |diff| {np.mean(img_mad):.2f} grey levels, {100 * np.mean(img_big):.2f}% of "
          f"values differ by > 16 (one bilinear interpolation instead of two)")
    print(f"  mask: {mask_cells} of {mask_total} map cells differ ({100 * mask_cells / max(mask_total, 1):.3f}%)")


def main() -> None:
    quick = "--quick" in sys.argv
    coco_dir = Path(sys.argv[sys.argv.index("--coco") + 1]) if "--coco" in sys.argv else \
        HERE.parent.parent / "shared" / "data" / "real" / "coco"
    sk = skmod.resolve("openpose18")
    cfg = AugmentConfig()
    records = build_records(coco_dir, sk)
    print(f"{coco_dir}: {len(records)} training samples in {len({r['file'] for r in records})} images; "
          f"openpose18, {cfg.crop_w}x{cfg.crop_h}, stride {cfg.stride}; one core")
    for rec in records[:1]:  # warm-up (imports, caches)
        reference_sample(coco_dir / rec["file"], rec, draw_params(cfg, np.random.default_rng(0)), sk, cfg)
        posedata_sample(coco_dir / rec["file"], rec, np.random.default_rng(0), sk, cfg)
    rounds = 2 if quick else 8
    run(coco_dir, sk, cfg, records, rounds, "real COCO images (no crowd regions in this file)")
    crowded = build_records(coco_dir, sk, extra_crowd=True)
    run(coco_dir, sk, cfg, crowded, max(1, rounds // 2), "same images + one synthetic crowd polygon each")


if __name__ == "__main__":
    main()
