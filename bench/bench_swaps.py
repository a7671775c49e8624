"""Measure F005 (left/right labels swapped in more instances than annotation noise and natural poses
explain, posedata/swaps.py) on the simulated people of bench_flipcheck.py: its FAIL rate on correct
labels, 2 to 5,000 instances, and its detection rate when an annotator swapped labels in 20% or 50%
of the instances. Seeded (0): a rerun prints the same figures.

    PYTHONPATH=. python bench/bench_swaps.py    # the run in bench/README.md

Two kinds of swap: the body's six limb pairs (shoulders to ankles) swapped while the face is kept
(an annotator who took the person's left for the image's left), and one random pair of the eight.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_flipcheck import _cp_upper, people  # noqa: E402

from posedata import skeleton as S  # noqa: E402
from posedata import swaps as W  # noqa: E402

SK = S.resolve("coco17")
PAIRS = [(SK.index(a), SK.index(b)) for a, b in SK.flip_pairs()]
BODY = [p for p in PAIRS if not {SK.keypoints[p[0]], SK.keypoints[p[1]]} & {"left_eye", "right_eye", "left_ear", "right_ear"}]


def swap(pts: np.ndarray, lab: np.ndarray, share: float, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pts, lab = pts.copy(), lab.copy()
    for n in np.flatnonzero(rng.random(len(pts)) < share):
        for a, b in BODY if kind == "body" else [PAIRS[rng.integers(len(PAIRS))]]:
            pts[n, [a, b]], lab[n, [a, b]] = pts[n, [b, a]], lab[n, [b, a]]
    return pts, lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="correct-label repetitions per size up to 100 "
                    "instances (fewer above: reps * 100 / n, at least 10)")
    ap.add_argument("--swap-reps", type=int, default=200)
    args = ap.parse_args()
    sizes = [2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000]
    rng = np.random.default_rng(0)
    runs = fails = 0
    per_pair, per_checked = np.zeros(len(PAIRS)), 0
    for n in sizes:
        r = max(10, min(args.reps, args.reps * 100 // n))
        t0 = time.perf_counter()
        f = share = 0
        for _ in range(r):
            pts, lab = people(n, rng)
            sw, checked, hit, p = W.swap_counts(pts, lab, SK)
            f += p <= W.ALPHA
            per_pair, per_checked = per_pair + sw[checked].sum(0), per_checked + int(checked.sum())
            share += hit.sum() / max(checked.sum(), 1)
        runs, fails = runs + r, fails + f
        print(f"correct labels  n={n:5d} reps={r:4d} F005 {100 * f / r:6.2f}%  mean flagged share {100 * share / r:5.1f}%  "
              f"{1000 * (time.perf_counter() - t0) / r:6.1f} ms/run", flush=True)
    print(f"correct labels: {fails} F005 in {runs} runs; 95% upper bound {100 * _cp_upper(fails, runs):.3f}%", flush=True)
    names = [f"{SK.keypoints[a].removeprefix('left_')} {100 * c / per_checked:.2f}%" for (a, _), c in zip(PAIRS, per_pair, strict=True)]
    print("correct labels counted as swapped, per pair:", ", ".join(names), flush=True)
    for kind in ("body", "one pair"):
        for share in (0.2, 0.5):
            for n in (20, 50, 100, 200):
                f = 0
                for _ in range(args.swap_reps):
                    pts, lab = swap(*people(n, rng), share, kind, rng)
                    f += W.swap_counts(pts, lab, SK)[3] <= W.ALPHA
                print(f"{kind:8s} swapped in {100 * share:3.0f}%  n={n:4d} reps={args.swap_reps} F005 "
                      f"{100 * f / args.swap_reps:6.2f}%", flush=True)


if __name__ == "__main__":
    main()
