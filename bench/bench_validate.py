"""Benchmark `posedata validate` (no --images) on a generated COCO-train-sized keypoint file.

Generates a seeded synthetic file shaped like COCO person_keypoints_train2017 (about 57k images,
150k annotations with 17 keypoints, polygon segmentations, a third of the instances without
keypoints, some crowd regions and a sprinkling of faults), writes it to a temp dir, then times
loading (posedata.io.load_json) and validate_coco separately. Budget: load + validate < 15 s.

    .venv/bin/python bench/bench_validate.py [--images 57000] [--annotations 150000] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from posedata.io import (
    load_json,  # noqa: E402
    paused_gc,  # noqa: E402
)
from posedata.skeleton import resolve  # noqa: E402
from posedata.validate import counts, validate_coco  # noqa: E402

COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle"]
# a frontal person template in a unit box (x, y), COCO order; left side at larger x (facing the camera)
TEMPLATE = np.array([[.5, .08], [.54, .06], [.46, .06], [.58, .08], [.42, .08], [.68, .22], [.32, .22],
                     [.75, .38], [.25, .38], [.78, .52], [.22, .52], [.62, .55], [.38, .55], [.62, .75],
                     [.38, .75], [.62, .95], [.38, .95]])


def generate(n_images: int, n_anns: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    W = rng.choice([640, 480, 500, 427], n_images)
    H = rng.choice([480, 640, 375, 333], n_images)
    images = [{"license": 1, "file_name": f"{i:012d}.jpg", "coco_url": f"http://example.invalid/{i:012d}.jpg",
               "height": int(H[i]), "width": int(W[i]), "date_captured": "2013-11-14 16:28:13",
               "id": i + 1} for i in range(n_images)]
    img = rng.integers(0, n_images, n_anns)
    img.sort()
    bw = rng.uniform(20, 200, n_anns)
    bh = bw * rng.uniform(1.2, 2.5, n_anns)
    bx = rng.uniform(0, 1, n_anns) * np.maximum(W[img] - bw, 1)
    by = rng.uniform(0, 1, n_anns) * np.maximum(H[img] - bh, 1)
    bw = np.minimum(bw, W[img] - bx)
    bh = np.minimum(bh, H[img] - by)
    pts = TEMPLATE[None] * np.stack([bw, bh], 1)[:, None] + np.stack([bx, by], 1)[:, None]
    pts += rng.normal(0, 2, pts.shape)
    pts = np.clip(np.round(pts), 0, np.stack([W[img] - 1, H[img] - 1], 1)[:, None])
    vis = rng.choice([0, 1, 2], (n_anns, 17), p=[0.3, 0.1, 0.6])
    vis[rng.uniform(size=n_anns) < 0.33] = 0  # COCO: about a third of the people have no keypoints
    pts[vis == 0] = 0
    crowd = rng.uniform(size=n_anns) < 0.01
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    px = bx[:, None] + bw[:, None] / 2 * (1 + np.cos(t))
    py = by[:, None] + bh[:, None] / 2 * (1 + np.sin(t))
    polys = np.round(np.stack([px, py], 2).reshape(n_anns, -1), 2).tolist()
    kps = np.concatenate([pts, vis[..., None]], 2).astype(int).reshape(n_anns, -1).tolist()
    nk = (vis > 0).sum(1).tolist()
    boxes = np.round(np.stack([bx, by, bw, bh], 1), 2).tolist()
    areas = np.round(bw * bh * 0.6, 4).tolist()
    annotations = [{
        "segmentation": [polys[i]], "num_keypoints": nk[i], "area": areas[i], "iscrowd": int(crowd[i]),
        "keypoints": [0] * 51 if crowd[i] else kps[i], "image_id": int(img[i]) + 1, "bbox": boxes[i],
        "category_id": 1, "id": 100000 + i} for i in range(n_anns)]
    # a sprinkling of faults so the report path is exercised too
    for i in rng.choice(n_anns, 200, replace=False):
        annotations[i]["num_keypoints"] = annotations[i]["num_keypoints"] + 1
    return {"info": {"description": "synthetic COCO-train-sized benchmark"}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": [{"supercategory": "person", "id": 1, "name": "person", "keypoints": COCO_NAMES,
                            "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13],
                                         [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3],
                                         [2, 4], [3, 5], [4, 6], [5, 7]]}]}


def bench_headers(tmp: Path, n: int) -> tuple[float, float]:
    """Seconds to size n JPEGs by header (what --images does) and by decoding them with OpenCV."""
    import cv2

    from posedata.images import image_header

    rng = np.random.default_rng(1)
    folder = tmp / "imgs"
    folder.mkdir()
    base = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    paths = []
    for i in range(n):
        p = folder / f"{i:06d}.jpg"
        cv2.imwrite(str(p), np.roll(base, i, axis=1))
        paths.append(p)
    t0 = time.perf_counter()
    for p in paths:
        image_header(p)
    t_hdr = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in paths:
        cv2.imread(str(p))
    return t_hdr, time.perf_counter() - t0


class Timer:
    """Wall and CPU seconds of a block (CPU time is steadier on a shared machine)."""

    def __enter__(self) -> Timer:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        self.ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = time.process_time() - self.c0 + (ch.ru_utime - self.ch0.ru_utime) + (ch.ru_stime - self.ch0.ru_stime)

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s wall, {self.cpu:6.2f} s CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=57000)
    ap.add_argument("--annotations", type=int, default=150000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--header-files", type=int, default=300, help="JPEGs for the --images header timing")
    ap.add_argument("--budget", type=float, default=15.0, help="seconds allowed for load + validate")
    a = ap.parse_args()
    sk = resolve("coco17")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "coco_train_synth.json"
        with Timer() as t_gen:
            path.write_text(json.dumps(generate(a.images, a.annotations, a.seed)))
        size_mb = path.stat().st_size / 1e6
        with Timer() as t_load_gc:  # the collector re-scans the growing heap while json builds it
            data = load_json(path)
        del data
        with Timer() as t_load, paused_gc():  # as validate_file loads it
            data = load_json(path)
        with Timer() as t_val:
            findings = validate_coco(data, sk, file=str(path))
        tracemalloc.start()
        validate_coco(data, sk, file=str(path))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del data
        # the whole command as a user runs it: start-up, load, validate, summary table, exit
        with Timer() as t_cli:
            cmd = subprocess.run([sys.executable, "-m", "posedata.cli", "validate", str(path), "--skeleton", "coco17"],
                                 capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
        assert cmd.returncode == 1, cmd.stderr  # the generated file carries seeded num_keypoints errors
        t_hdr, t_cv = bench_headers(Path(tmp), a.header_files)
    c = counts(findings)
    wall, cpu = t_load.wall + t_val.wall, t_load.cpu + t_val.cpu
    print(f"file: {a.images} images, {a.annotations} annotations, {size_mb:.0f} MB (generated in {t_gen.wall:.1f} s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"load_json:       {t_load}  (with the garbage collector running: {t_load_gc}; "
          f"pausing it = {t_load_gc.wall / t_load.wall:.1f}x by wall, {t_load_gc.cpu / t_load.cpu:.1f}x by CPU)")
    print(f"validate_coco:   {t_val}  (peak Python allocations {peak / 1e6:.0f} MB)")
    print(f"load + validate: {wall:6.2f} s wall = {wall / a.budget:.2f} x the {a.budget:g} s budget "
          f"({cpu:.2f} s CPU = {cpu / a.budget:.2f} x)")
    print(f"`posedata validate` command end to end: {t_cli} = {t_cli.wall / a.budget:.2f} x the budget "
          f"({t_cli.cpu / a.budget:.2f} x by CPU)")
    print(f"validate throughput: {a.annotations / t_val.wall:,.0f} annotations/s")
    print(f"findings: {c['error']} errors, {c['warning']} warnings, {c['info']} info; by code {c['by_code']}")
    print(f"--images header read: {t_hdr / a.header_files * 1e3:.3f} ms/file vs cv2.imread "
          f"{t_cv / a.header_files * 1e3:.2f} ms/file on 640x480 JPEGs = {t_cv / t_hdr:.0f}x faster "
          f"({a.header_files} files)")
    if wall > a.budget:
        sys.exit(1)


if __name__ == "__main__":
    main()
