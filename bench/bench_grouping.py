"""Per-image grouping time (peak extraction + limb scoring + assembly) for 1, 5 and 20 instances:
trainer.grouping.group vs the loop-for-loop port of the reference's extract_keypoints +
group_keypoints (the port tests/test_grouping.py checks parity against).

Run: .venv/bin/python bench/bench_grouping.py [--quick]

Maps: the openpose18 skeleton's ground-truth heatmaps and PAFs for N people laid out on a grid,
rendered at stride 8 (posedata.targets) and upsampled bicubically to 368 x 656 (a 16:9 image at
the reference's input height), as the reference's val.py hands them to grouping. A second set adds
noise at map resolution (before upsampling, so the maps stay smooth like a network's output): per
keypoint type one spurious Gaussian blob per person (height 0.15-0.5), uniform 0-0.08 on every
heatmap cell, Gaussian sigma 0.1 on every PAF cell; so there are false peaks, more candidate pairs
and some suppression work. Both implementations must return the
same groups (checked for every case). One core (OMP/OpenBLAS threads 1); per-image CPU time
(time.process_time), median of the repeats.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_grouping import (  # noqa: E402
    OP18,
    layout_instances,
    our_instances,
    ref_instances,
    ref_run,
)

from trainer.grouping import group  # noqa: E402

H, W = 368, 656


def maps_for(n: int, noisy: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth maps for n people at stride 8, optionally with network-like noise added at
    that resolution, upsampled bicubically to H x W as inference does."""
    import cv2

    from posedata.targets import render_heatmaps, render_pafs

    rng = np.random.default_rng(seed + n)
    cols = {1: 1, 5: 5, 20: 7}[n]
    rows = -(-n // cols)
    size = min((W - 40) / cols, (H - 40) / rows)
    kps = layout_instances(OP18, n, rng, size=size, cols=cols, margin=20)
    mh, mw = H // 8, W // 8
    heat = render_heatmaps(kps, mh, mw, 8)
    pafs = render_pafs(kps, OP18.limbs_array, mh, mw, 8)
    if noisy:
        yy, xx = np.mgrid[0:mh, 0:mw]
        for c in range(OP18.num_keypoints):
            for _ in range(n):  # one spurious blob per person and keypoint type
                cx, cy, s = rng.uniform(0, mw), rng.uniform(0, mh), rng.uniform(0.5, 1.5)
                heat[c] += rng.uniform(0.15, 0.5) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        heat += rng.uniform(0, 0.08, heat.shape).astype(np.float32)
        pafs += rng.normal(0, 0.1, pafs.shape).astype(np.float32)

    def up(m: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(cv2.resize(m.transpose(1, 2, 0), (W, H), interpolation=cv2.INTER_CUBIC)
                                    .transpose(2, 0, 1))

    return up(heat), up(pafs)


def cpu_median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times))


def main() -> None:
    quick = "--quick" in sys.argv
    rows = []
    for noisy in (False, True):
        for n in (1, 5, 20):
            heat, pafs = maps_for(n, noisy)
            (entries, all_kp), _ = ref_run(heat, pafs)
            poses, scores, counts = group(heat, pafs, OP18, return_counts=True)
            ours_g, ref_g = our_instances(poses, scores, counts), ref_instances(entries, all_kp)
            same = [o[0] for o in ours_g] == [r[0] for r in ref_g]
            reps_ours = 5 if quick else 21
            reps_ref = 2 if quick else (5 if n == 20 else 9)
            t_ours = cpu_median(lambda h=heat, p=pafs: group(h, p, OP18), reps_ours)
            t_ref = cpu_median(lambda h=heat, p=pafs: ref_run(h, p), reps_ref)
            rows.append((n, noisy, len(poses), same, t_ours, t_ref))
    print(f"openpose18 grouping, maps {H} x {W} (19 heatmaps, 38 PAFs), per image, CPU time, 1 core")
    print(f"{'people':>6} {'maps':>6} {'found':>5} {'same groups':>11} {'posedata ms':>12} {'reference port ms':>18} {'ratio':>7}")
    for n, noisy, found, same, t_o, t_r in rows:
        print(f"{n:>6} {'noisy' if noisy else 'clean':>6} {found:>5} {str(same):>11} {1e3 * t_o:>12.1f} "
              f"{1e3 * t_r:>18.1f} {t_r / t_o:>6.1f}x")
    # where the time goes in ours: peaks vs the rest
    from trainer.grouping import extract_peaks

    heat, pafs = maps_for(20, True)
    t_peaks = cpu_median(lambda: extract_peaks(heat, num_keypoints=18), 5 if quick else 21)
    t_all = cpu_median(lambda: group(heat, pafs, OP18), 5 if quick else 21)
    print(f"20 people, noisy: peak extraction {1e3 * t_peaks:.1f} ms of {1e3 * t_all:.1f} ms")


if __name__ == "__main__":
    main()
