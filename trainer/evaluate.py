"""The val and infer commands' work: inference over a COCO file or a folder, results, COCOeval,
outputs. The parts live in predict (inference), metrics (COCO results and COCOeval), draw and
export_onnx.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError

from .draw import draw_poses, write_png
from .grouping import GroupingParams
from .metrics import (
    GroundTruth,
    _num,
    coco_eval,
    image_paths,
    instance_scores,
    load_ground_truth,
    to_coco_keypoints,
)
from .predict import MULTISCALE, detect, load_model, prepare, read_image

__all__ = ["evaluate", "infer", "list_images", "coco_category", "write_outputs", "load_model"]

def evaluate(model, skeleton, coco_json: Path, images_dir: Path, input_size: int = 368, multiscale: bool = False,
             flip: bool = False, out_dir: Path | None = None, progress: Callable[[int, int], None] | None = None,
             category_id: int | None = None, stride: int = 8, overlays: int = 4,
             params: GroupingParams | None = None, scales: tuple[float, ...] | None = None) -> dict[str, Any]:
    """Run inference on every image of a COCO keypoint file, group, and score with COCOeval.

    Returns AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl, per_keypoint (list of dicts),
    results (COCO results list), n_images, n_detections. With out_dir, writes results.json,
    metrics.json and overlay PNGs of the first `overlays` images (atomically, after all images
    ran: an error part-way leaves no partial output). `progress(done, total)` after each image.
    `scales` (multiples of input_size whose maps are averaged) replaces the single scale, or the
    reference's four with `multiscale`."""
    gt = load_ground_truth(Path(coco_json), skeleton, category_id)
    paths = image_paths(gt, Path(images_dir))
    model = prepare(model)
    results: list[dict] = []
    drawn: list[tuple[int, np.ndarray]] = []
    cat_out = gt.category_ids[0]
    n_eval = len(gt.keypoint_names)
    for i, (im, p) in enumerate(zip(gt.images, paths, strict=True)):
        img = read_image(p, gt.file, f"images[{i}].file_name")
        det = detect(model, img, skeleton, input_size, stride, multiscale, flip, params, scales)
        kps = to_coco_keypoints(det.poses, gt.skeleton_to_eval, n_eval)
        sc = instance_scores(det, skeleton)
        for k, s in zip(kps, sc, strict=True):
            results.append({"image_id": im.id, "category_id": cat_out,
                            "keypoints": [_num(v) for v in k.ravel()], "score": float(s)})
        if out_dir is not None and len(drawn) < overlays:
            gt_sk = _eval_to_skeleton_points(gt.gt_by_image.get(im.id), gt, skeleton.num_keypoints)
            drawn.append((im.id, draw_poses(img, det.poses, skeleton, gt_sk)))
        if progress is not None:
            progress(i + 1, len(paths))
    stats, per_kp = coco_eval(gt, results)
    out: dict[str, Any] = dict(stats)
    out.update(per_keypoint=per_kp, results=results, n_images=len(gt.images), n_detections=len(results),
               settings={"input_size": input_size, "stride": stride, "multiscale": multiscale, "flip": flip,
                         "scales": list(scales) if scales else (list(MULTISCALE) if multiscale else [1.0]),
                         "sigmas": [float(s) for s in gt.sigmas], "keypoints": gt.keypoint_names,
                         "category_ids": gt.category_ids, "categories_merged": gt.merged})
    if out_dir is not None:
        write_outputs(Path(out_dir), out, drawn)
    return out


def _eval_to_skeleton_points(gt_eval: np.ndarray | None, gt: GroundTruth, k: int) -> np.ndarray | None:
    if gt_eval is None:
        return None
    out = np.full((len(gt_eval), k, 3), -1.0)
    lab = gt_eval[:, :, 2] > 0
    pts = np.where(lab[:, :, None], gt_eval, -1.0)
    out[:, gt.eval_to_skeleton] = pts
    return out


def write_outputs(out_dir: Path, metrics: dict[str, Any], drawn: list[tuple[int, np.ndarray]]) -> list[Path]:
    from posedata.io import atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "results.json", out_dir / "metrics.json"]
    atomic_write_json(written[0], metrics["results"])
    atomic_write_json(written[1], {k: v for k, v in metrics.items() if k != "results"}, indent=2)
    for image_id, img in drawn:
        p = out_dir / f"overlay_{image_id}.png"
        write_png(p, img)
        written.append(p)
    return written


def list_images(source: Path) -> list[Path]:
    """An image file, or the images directly inside a folder (sorted by name)."""
    from posedata.images import IMAGE_EXTENSIONS

    if source.is_file():
        return [source]
    if source.is_dir():
        found = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder", file=str(source))
        return found
    raise InputError("no such file or folder", file=str(source))


def coco_category(skeleton, category_id: int = 1) -> dict[str, Any]:
    """A COCO keypoint category for the skeleton: its coco_keypoints and the limbs between them."""
    names = list(skeleton.coco_keypoints)
    idx = skeleton.source_index(names)
    limbs = [[int(idx[a]) + 1, int(idx[b]) + 1] for a, b in skeleton.limbs if idx[a] >= 0 and idx[b] >= 0]
    return {"id": category_id, "name": skeleton.name, "supercategory": skeleton.name, "keypoints": names,
            "skeleton": limbs}


def infer(model, skeleton, images: list[Path], out_dir: Path, input_size: int = 368, multiscale: bool = False,
          flip: bool = False, progress: Callable[[int, int], None] | None = None, stride: int = 8,
          params: GroupingParams | None = None, min_score: float = 0.0,
          scales: tuple[float, ...] | None = None) -> dict[str, Any]:
    """Detect on each image (scales as in evaluate); write <stem>.png (drawn poses) per image and
    results.json, a COCO dataset (images, annotations with a score, the skeleton's category; found keypoints v = 2 at
    x + 0.5, y + 0.5 like val's results). Instances scoring below min_score (the results' score)
    are neither written nor drawn. Images are all decoded first: a corrupt one stops the run
    before anything is written. Returns the COCO dict."""
    from posedata.io import atomic_write_json

    cat = coco_category(skeleton)
    target = skeleton.source_index(cat["keypoints"])
    n_kp = len(cat["keypoints"])
    for p in images:
        read_image(p)
    model = prepare(model)
    stems: dict[str, int] = {}
    coco: dict[str, Any] = {"info": {"description": f"posedata infer, skeleton {skeleton.name}"},
                            "images": [], "annotations": [], "categories": [cat]}
    drawn = []
    for i, p in enumerate(images):
        img = read_image(p)
        det = detect(model, img, skeleton, input_size, stride, multiscale, flip, params, scales)
        scores = instance_scores(det, skeleton)
        keep = scores >= min_score
        poses, scores = det.poses[keep], scores[keep]
        kps = to_coco_keypoints(poses, target, n_kp, visible=2)
        h, w = img.shape[:2]
        coco["images"].append({"id": i + 1, "file_name": p.name, "width": w, "height": h})
        for k, s in zip(kps, scores, strict=True):
            lab = k[:, 2] > 0
            if not lab.any():  # only derived keypoints found: nothing to write in the file's order
                continue
            x0, y0 = k[lab, :2].min(0)
            x1, y1 = k[lab, :2].max(0)
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": i + 1, "category_id": cat["id"],
                "keypoints": [_num(v) for v in k.ravel()], "num_keypoints": int(lab.sum()), "score": float(s),
                "bbox": [_num(x0), _num(y0), _num(x1 - x0), _num(y1 - y0)], "area": _num((x1 - x0) * (y1 - y0)),
                "iscrowd": 0})
        stem = p.stem
        stems[stem] = stems.get(stem, 0) + 1
        name = stem if stems[stem] == 1 else f"{stem}_{stems[stem]}"
        drawn.append((out_dir / f"{name}.png", draw_poses(img, poses, skeleton)))
        if progress is not None:
            progress(i + 1, len(images))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, img in drawn:
        write_png(path, img)
    atomic_write_json(out_dir / "results.json", coco, indent=1)
    return coco
