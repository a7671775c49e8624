"""Import/export speed of the DeepLabCut, Labelme and YOLO formats, with the ratios of the vectorised
paths against the straightforward per-cell/per-keypoint loops they replace, measured in one run.

    .venv/bin/python bench/bench_formats.py [--frames 2000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posedata import skeleton as S
from posedata.formats import deeplabcut as D
from posedata.formats import labelme as L
from posedata.formats import yolo as Y
from posedata.formats.base import ImportOptions


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def loop_cells(values: list[list[str]], ncol: int) -> np.ndarray:
    """Baseline: one float() per cell."""
    out = np.full((len(values), ncol), np.nan)
    for i, row in enumerate(values):
        for c, v in enumerate(row):
            v = v.strip()
            if v and v.lower() != "nan":
                out[i, c] = float(v)
    return out


def numpy_cells(values: list[list[str]], ncol: int) -> np.ndarray:
    """The NumPy route: a str array, blanks replaced, one astype (measured slower; not used)."""
    cells = np.char.strip(np.array(values, dtype=str).reshape(len(values), ncol))
    return np.where(np.isin(cells, ["", "nan", "NaN"]), "nan", cells).astype(np.float64)


def loop_lines(kps: np.ndarray, boxes: np.ndarray) -> list[str]:
    """Baseline: one f-string per keypoint."""
    lines = []
    for n in range(len(kps)):
        vals = " ".join(f"{kps[n, k, 0]:.6f} {kps[n, k, 1]:.6f} {int(kps[n, k, 2])}" for k in range(kps.shape[1]))
        lines.append(f"0 {boxes[n, 0]:.6f} {boxes[n, 1]:.6f} {boxes[n, 2]:.6f} {boxes[n, 3]:.6f} {vals}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--animals", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    sk = S.resolve("coco17")
    names = list(sk.keypoints)
    F, A, K = args.frames, args.animals, len(names)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        vid = root / "labeled-data" / "v1"
        vid.mkdir(parents=True)
        img = np.zeros((48, 64, 3), np.uint8)
        for f in range(F):
            cv2.imwrite(str(vid / f"img{f:05d}.png"), img)
        xy = rng.uniform(1, 47, (F, A, K, 2)).round(2)
        xy[rng.random((F, A, K)) < 0.2] = np.nan
        head = [["scorer", "", ""] + ["me"] * (A * K * 2),
                ["individuals", "", ""] + [f"a{a}" for a in range(A) for _ in range(K * 2)],
                ["bodyparts", "", ""] + [n for _ in range(A) for n in names for _ in "xy"],
                ["coords", "", ""] + ["x", "y"] * (A * K)]
        rows = [["labeled-data", "v1", f"img{f:05d}.png"] + ["" if np.isnan(v) else f"{v}" for v in xy[f].ravel()]
                for f in range(F)]
        csv = vid / "CollectedData_me.csv"
        csv.write_text("\n".join(",".join(r) for r in head + rows) + "\n")
        values = [r[3:] for r in rows]
        ncol = A * K * 2

        t_loop = timed(lambda: loop_cells(values, ncol))
        t_np = timed(lambda: numpy_cells(values, ncol))
        t_vec = timed(lambda: D.cells_to_float(values, ncol, "x", list(range(F)), 3))
        assert np.allclose(loop_cells(values, ncol), D.cells_to_float(values, ncol, "x", list(range(F)), 3), equal_nan=True)
        assert np.allclose(numpy_cells(values, ncol), D.cells_to_float(values, ncol, "x", list(range(F)), 3), equal_nan=True)
        t_parse = timed(lambda: D.parse_csv(csv))
        t_read = timed(lambda: D.read(csv, sk, ImportOptions()), repeat=1)
        res = D.read(csv, sk, ImportOptions())
        n_inst = len(res.dataset.annotations)
        print(f"DeepLabCut CSV, {F} frames x {A} animals x {K} bodyparts ({F * ncol} cells):")
        print(f"  cells -> floats: per-cell loop {t_loop * 1e3:.1f} ms, NumPy str array {t_np * 1e3:.1f} ms, "
              f"comprehension (used) {t_vec * 1e3:.1f} ms (x{t_loop / t_vec:.2f} vs loop, x{t_np / t_vec:.2f} vs NumPy)")
        print(f"  parse_csv {t_parse * 1e3:.1f} ms; full import (image headers, repairs) {t_read:.2f} s = "
              f"{n_inst / t_read:.0f} instances/s")

        # YOLO export lines and a full export + import round trip
        ds = res.dataset
        kps = np.stack([a.keypoints for a in ds.annotations])
        kps[:, :, :2] /= 64.0
        boxes = np.tile([0.5, 0.5, 0.2, 0.2], (len(kps), 1))
        sizes = np.tile([1.0, 1.0], (len(kps), 1))
        t_loop = timed(lambda: loop_lines(kps, boxes))
        t_vec = timed(lambda: Y.yolo_lines(kps, np.column_stack([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, 2:]]), sizes))
        print(f"YOLO label lines for {len(kps)} instances: per-keypoint f-strings {t_loop * 1e3:.1f} ms, "
              f"one format per line {t_vec * 1e3:.1f} ms (x{t_loop / t_vec:.1f})")
        out = Path(tmp) / "yolo"
        t_exp = timed(lambda: Y.export(ds, sk, out, images=root), repeat=1)
        t_imp = timed(lambda: Y.read(out / "data.yaml", sk, ImportOptions()), repeat=1)
        print(f"  export {len(ds.images)} images (hard links) {t_exp:.2f} s; import back {t_imp:.2f} s = "
              f"{n_inst / t_imp:.0f} instances/s")

        # Labelme: one JSON per image
        lm = Path(tmp) / "lm"
        lm.mkdir()
        for f in range(F):
            cv2.imwrite(str(lm / f"i{f}.png"), img)
            shapes = [{"label": names[k], "points": [[float(xy[f, a, k, 0]), float(xy[f, a, k, 1])]], "group_id": a,
                       "shape_type": "point", "flags": {}} for a in range(A) for k in range(K) if not np.isnan(xy[f, a, k, 0])]
            (lm / f"i{f}.json").write_text(json.dumps({"version": "5.5.0", "shapes": shapes, "imagePath": f"i{f}.png",
                                                       "imageData": None, "imageHeight": 48, "imageWidth": 64}))
        t_lm = timed(lambda: L.read(lm, sk, ImportOptions()), repeat=1)
        print(f"Labelme, {F} JSON files: import {t_lm:.2f} s = {F / t_lm:.0f} files/s")


if __name__ == "__main__":
    main()
