"""Import speed of the coco-annotator, CVAT XML and Label Studio readers on synthetic exports of the
same labels, and the vectorised bbox-from-keypoints repair against a per-instance loop, in one run.

    .venv/bin/python bench/bench_import.py [--images 2000] [--per-image 4]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from bench_formats import timed  # bench/ is on the path: the script's own folder

from posedata import skeleton as S
from posedata.formats import coco_annotator as CA
from posedata.importer import ImportOptions, bboxes_from_keypoints, import_file

W, H = 640, 480


def make_labels(n_images: int, per_image: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kps = np.zeros((n_images * per_image, k, 3))
    centre = rng.uniform([80, 80], [W - 80, H - 80], (len(kps), 1, 2))
    kps[:, :, :2] = np.round(centre + rng.normal(0, 30, (len(kps), k, 2)))
    kps[:, :, 2] = rng.choice([0, 1, 2], (len(kps), k), p=[0.15, 0.15, 0.7])
    kps[kps[:, :, 2] == 0, :2] = 0
    return kps


def coco_annotator_export(kps: np.ndarray, names: list[str], per_image: int) -> dict:
    n_img = len(kps) // per_image
    images = [{"id": i + 1, "file_name": f"{i:06d}.jpg", "path": f"/datasets/bench/{i:06d}.jpg", "width": W,
               "height": H, "dataset_id": 1, "annotated": True} for i in range(n_img)]
    anns = [{"id": j + 1, "image_id": j // per_image + 1, "category_id": 1, "keypoints": kps[j].astype(int).ravel().tolist(),
             "num_keypoints": int((kps[j, :, 2] > 0).sum()), "area": 0, "bbox": [0, 0, 0, 0], "segmentation": [],
             "iscrowd": False, "isbbox": False, "color": "#fff", "metadata": {}} for j in range(len(kps))]
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}


def cvat_xml(kps: np.ndarray, names: list[str], per_image: int) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations><version>1.1</version><meta><job><labels>",
           "<label><name>person</name><type>skeleton</type></label>"]
    out += [f"<label><name>{n}</name><type>points</type><parent>person</parent></label>" for n in names]
    out.append("</labels></job></meta>")
    for i in range(len(kps) // per_image):
        out.append(f'<image id="{i}" name="{i:06d}.jpg" width="{W}" height="{H}">')
        for j in range(i * per_image, (i + 1) * per_image):
            out.append('<skeleton label="person" source="manual" z_order="0">')
            for n, (x, y, v) in zip(names, kps[j], strict=True):
                out.append(f'<points label="{n}" source="manual" outside="{int(v == 0)}" occluded="{int(v == 1)}" '
                           f'points="{x:.2f},{y:.2f}"></points>')
            out.append("</skeleton>")
        out.append("</image>")
    out.append("</annotations>")
    return "\n".join(out)


def label_studio(kps: np.ndarray, names: list[str], per_image: int) -> list:
    tasks = []
    for i in range(len(kps) // per_image):
        res = []
        for j in range(i * per_image, (i + 1) * per_image):
            rid = f"r{j}"
            xs, ys = kps[j, kps[j, :, 2] > 0, 0], kps[j, kps[j, :, 2] > 0, 1]
            res.append({"id": rid, "type": "rectanglelabels", "original_width": W, "original_height": H,
                        "value": {"x": xs.min() / W * 100, "y": ys.min() / H * 100, "width": np.ptp(xs) / W * 100 + 0.1,
                                  "height": np.ptp(ys) / H * 100 + 0.1, "rectanglelabels": ["person"]}})
            for n, (x, y, v) in zip(names, kps[j], strict=True):
                if v > 0:
                    res.append({"id": f"{rid}-{n}", "type": "keypointlabels", "parentID": rid, "original_width": W,
                                "original_height": H, "value": {"x": x / W * 100, "y": y / H * 100,
                                                                "keypointlabels": [n]}})
        tasks.append({"id": i + 1, "data": {"image": f"/data/upload/1/{i:06d}.jpg"},
                      "annotations": [{"id": i + 1, "result": res, "was_cancelled": False}]})
    return tasks


def bbox_loop(kps: np.ndarray, sizes: np.ndarray, margin: float) -> np.ndarray:
    """The straightforward per-instance version the vectorised repair replaces."""
    out = np.zeros((len(kps), 4))
    for n in range(len(kps)):
        lab = kps[n, :, 2] > 0
        if not lab.any():
            continue
        x0, y0 = kps[n, lab, :2].min(0)
        x1, y1 = kps[n, lab, :2].max(0)
        px, py = (x1 - x0) * margin, (y1 - y0) * margin
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        a0, a1 = min(x0 - px, cx - 0.5), max(x1 + px, cx + 0.5)
        b0, b1 = min(y0 - py, cy - 0.5), max(y1 + py, cy + 0.5)
        a0, a1 = min(max(a0, 0), sizes[n, 0]), min(max(a1, 0), sizes[n, 0])
        b0, b1 = min(max(b0, 0), sizes[n, 1]), min(max(b1, 0), sizes[n, 1])
        out[n] = (a0, b0, a1 - a0, b1 - b0)
    return np.round(out, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--per-image", type=int, default=4)
    args = ap.parse_args()
    sk = S.resolve("coco17")
    names = list(sk.coco_keypoints)
    kps = make_labels(args.images, args.per_image, len(names))
    n = len(kps)
    print(f"{args.images} images, {n} instances, {len(names)} keypoints")

    sizes = np.tile([W, H], (n, 1))
    vec = timed(lambda: bboxes_from_keypoints(kps, sizes, 0.1))
    loop = timed(lambda: bbox_loop(kps, sizes, 0.1), repeat=1)
    assert np.allclose(bboxes_from_keypoints(kps, sizes, 0.1)[0], bbox_loop(kps, sizes, 0.1))
    print(f"bbox from keypoints: vectorised {vec * 1e3:.1f} ms, per-instance loop {loop * 1e3:.1f} ms, "
          f"ratio {loop / vec:.0f}x")

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "ca.json").write_text(json.dumps(coco_annotator_export(kps, names, args.per_image)))
        (d / "cvat.xml").write_text(cvat_xml(kps, names, args.per_image))
        (d / "ls.json").write_text(json.dumps(label_studio(kps, names, args.per_image)))
        ref = None
        for fmt, f in (("coco-annotator", "ca.json"), ("cvat", "cvat.xml"), ("label-studio", "ls.json")):
            size = (d / f).stat().st_size / 1e6
            t = timed(lambda fmt=fmt, f=f: import_file(fmt, d / f, sk, ImportOptions()), repeat=2)
            r = import_file(fmt, d / f, sk, ImportOptions())
            got = np.stack([a.keypoints for a in r.dataset.annotations])
            ref = got if ref is None else ref
            # Label Studio has no occlusion flag: compare which points are labelled and where
            same_lab = bool(np.array_equal(got[:, :, 2] > 0, ref[:, :, 2] > 0))
            dxy = np.abs(got[:, :, :2] - ref[:, :, :2]).max()
            print(f"{fmt:15s} {size:6.1f} MB  {t:6.2f} s  {n / t:8.0f} instances/s  "
                  f"same labelled points as coco-annotator: {same_lab}, max |dxy| {dxy:.3f} px")
        from posedata.validate import validate_coco

        data = import_file("coco-annotator", d / "ca.json", sk, ImportOptions()).dataset.to_coco()
        t = timed(lambda: CA.to_coco_annotator(data), repeat=2)
        print(f"coco-annotator writer: {t:.2f} s")
        t = timed(lambda: validate_coco(data, sk), repeat=1)
        print(f"validate of the imported file: {t:.2f} s")


if __name__ == "__main__":
    main()
