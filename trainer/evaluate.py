"""Inference as the reference runs it, COCO-format results and COCOeval, for any skeleton.

Inference (the reference's val.py `infer`, generalised):
- the BGR image is normalised as in training, (pixel - 128) / 256;
- per scale s (1, or 0.5, 1, 1.5, 2 with multiscale) it is resized (bicubic) so its height is
  s * input_size, then padded with 0 (grey 128 before normalising) to at least input_size high
  and wide, rounded up to a multiple of the stride, the image centred (odd pixels go bottom/right).
  The reference skips height padding once the scaled image is taller than input_size; at
  input_size 368 and its scales the heights are multiples of 8 anyway, so this is the same there
  and well defined elsewhere;
- the last stage's heatmaps and PAFs are upsampled by the stride (bicubic), the padding is cut
  off, and they are resized (bicubic) to the image size; scales are averaged.
- with flip, the mirrored padded image runs in the same batch; its maps are mirrored back with
  posedata.targets.flip_targets (heatmap channel i from channel flip[i]; PAF limb i from its
  mirror limb, x negated, or y negated when the mirror limb lists its ends the other way) and
  averaged with the direct maps. A limb without a mirror limb keeps the direct maps only.

Results (the reference's convert_to_coco_format, generalised): skeleton keypoints are written to
the COCO file's keypoint order (Skeleton.source_index; derived keypoints such as a neck are
dropped), found ones as x + 0.5, y + 0.5, v = 1, missing ones as 0, 0, 0. Image ids are the JSON's
own, never parsed from file names. Instance score = total_score * max(0, count - d), where
total_score and count are the grouping entry's (count excludes keypoints filled in by redundant
limbs, as the reference's) and d is the number of derived keypoints of the skeleton: the
reference's count - 1 ("- 1 for the neck", subtracted whether or not the instance has a neck),
generalised; for skeletons without derived keypoints d = 0.

Evaluation: pycocotools COCOeval, iouType "keypoints", with params.kpt_oks_sigmas = the skeleton's
sigmas of the evaluated keypoints. Evaluated keypoints are the dataset keypoints the skeleton
uses (normally all of them); dataset keypoints the skeleton does not use are left out of both
ground truth and results rather than scored as misses.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError, PosedataError

from .grouping import GroupingParams, group

MULTISCALE = (0.5, 1.0, 1.5, 2.0)
IMG_MEAN = 128.0
IMG_SCALE = 1.0 / 256.0
STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CV_MAX_CHANNELS = 512  # cv2.resize handles at most this many channels at once


# ------------------------------------------------------------------ inference
def normalize(image_bgr: np.ndarray) -> np.ndarray:
    return (np.asarray(image_bgr, dtype=np.float32) - IMG_MEAN) * IMG_SCALE


def pad_amounts(h: int, w: int, input_size: int, stride: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) padding to at least input_size, rounded up to the stride."""
    ph = math.ceil(max(h, input_size) / stride) * stride
    pw = math.ceil(max(w, input_size) / stride) * stride
    top, left = (ph - h) // 2, (pw - w) // 2
    return top, left, ph - h - top, pw - w - left


def _resize_channels(maps_hwc: np.ndarray, dsize: tuple[int, int] | None, fx: float = 0.0) -> np.ndarray:
    """cv2.resize (bicubic) of an (H, W, C) stack, in chunks cv2 accepts."""
    import cv2

    parts = []
    for c0 in range(0, maps_hwc.shape[2], CV_MAX_CHANNELS):
        chunk = np.ascontiguousarray(maps_hwc[:, :, c0:c0 + CV_MAX_CHANNELS])
        r = cv2.resize(chunk, dsize or (0, 0), fx=fx, fy=fx, interpolation=cv2.INTER_CUBIC)
        parts.append(r.reshape(r.shape[0], r.shape[1], -1))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def _device(model) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


def _forward(model, batch_bhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last stage's (heatmaps, pafs) as float32 (B, C, h, w) arrays."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch_bhwc)).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        outs = model(x.to(_device(model)))
    return outs[-2].float().cpu().numpy(), outs[-1].float().cpu().numpy()


def predict(model, image_bgr: np.ndarray, skeleton, input_size: int = 368, stride: int = 8,
            multiscale: bool = False, flip: bool = False, scales: tuple[float, ...] | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (K + 1, H, W) and PAFs (2L, H, W), float32, at the image's own resolution."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise InputError(f"expected a BGR image (H, W, 3), got shape {image_bgr.shape}")
    scales = tuple(scales) if scales else (MULTISCALE if multiscale else (1.0,))
    h, w = image_bgr.shape[:2]
    normed = normalize(image_bgr)
    nh, nl = skeleton.num_heatmaps, skeleton.num_pafs
    acc = np.zeros((h, w, nh + nl), dtype=np.float32)
    mirrored = np.array([j >= 0 for j, _ in skeleton.limb_flip], dtype=bool)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        for s in scales:
            acc += _predict_scale(model, normed, skeleton, s * input_size / h, input_size, stride, flip,
                                  mirrored) / len(scales)
    finally:
        if was_training:
            model.train()
    maps = acc.transpose(2, 0, 1)
    return np.ascontiguousarray(maps[:nh]), np.ascontiguousarray(maps[nh:])


def _predict_scale(model, normed: np.ndarray, skeleton, ratio: float, input_size: int, stride: int,
                   flip: bool, mirrored: np.ndarray) -> np.ndarray:
    import cv2

    h, w = normed.shape[:2]
    scaled = cv2.resize(normed, (0, 0), fx=ratio, fy=ratio, interpolation=cv2.INTER_CUBIC)
    top, left, bottom, right = pad_amounts(scaled.shape[0], scaled.shape[1], input_size, stride)
    padded = cv2.copyMakeBorder(scaled, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    batch = np.stack([padded, padded[:, ::-1]]) if flip else padded[None]
    heat, pafs = _forward(model, batch)
    if heat.shape[1] != skeleton.num_heatmaps or pafs.shape[1] != skeleton.num_pafs:
        raise InputError(f"the model outputs {heat.shape[1]} heatmaps and {pafs.shape[1]} PAF channels; skeleton "
                         f"{skeleton.name!r} needs {skeleton.num_heatmaps} and {skeleton.num_pafs}")
    heat0, pafs0 = heat[0], pafs[0]
    if flip:
        from posedata.targets import flip_targets

        heat1, pafs1 = flip_targets(heat[1], pafs[1], skeleton)
        heat0 = (heat0 + heat1) / 2
        both = np.repeat(mirrored, 2)
        pafs0 = np.where(both[:, None, None], (pafs0 + pafs1) / 2, pafs0)
    maps = np.concatenate([heat0, pafs0]).transpose(1, 2, 0)
    up = _resize_channels(maps, None, fx=stride)
    up = up[top:up.shape[0] - bottom, left:up.shape[1] - right]
    return _resize_channels(up, (w, h))


@dataclass
class Detections:
    """Grouped instances at image resolution: poses (P, K, 3) x, y, score (-1 missing), the
    entries' total scores and counts (P,)."""

    poses: np.ndarray
    scores: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.poses)


def detect(model, image_bgr: np.ndarray, skeleton, input_size: int = 368, stride: int = 8,
           multiscale: bool = False, flip: bool = False, params: GroupingParams | None = None) -> Detections:
    heat, pafs = predict(model, image_bgr, skeleton, input_size, stride, multiscale, flip)
    poses, scores, counts = group(heat, pafs, skeleton, params, return_counts=True)
    return Detections(poses, scores, counts)


# ------------------------------------------------------------------ COCO results
def instance_scores(det: Detections, skeleton) -> np.ndarray:
    """total_score * max(0, count - number of derived keypoints): see the module docstring."""
    return det.scores * np.maximum(0, det.counts - len(skeleton.derived_indices))


def to_coco_keypoints(poses: np.ndarray, target_index: np.ndarray, n_target: int, visible: int = 1) -> np.ndarray:
    """(P, K, 3) skeleton-order poses -> (P, n_target, 3) with x + 0.5, y + 0.5, v for found
    keypoints and 0, 0, 0 for missing ones. target_index[i] is skeleton keypoint i's position in
    the target list, -1 to drop it."""
    out = np.zeros((len(poses), n_target, 3), dtype=np.float64)
    sel = np.flatnonzero(target_index >= 0)
    src = poses[:, sel]
    found = src[:, :, 0] >= 0
    dst = target_index[sel]
    out[:, dst, 0] = np.where(found, src[:, :, 0] + 0.5, 0.0)
    out[:, dst, 1] = np.where(found, src[:, :, 1] + 0.5, 0.0)
    out[:, dst, 2] = np.where(found, visible, 0)
    return out


def _num(v: float) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() else round(f, 3)


# ------------------------------------------------------------------ ground truth
@dataclass
class GroundTruth:
    """A COCO keypoint file prepared for evaluation with a skeleton."""

    file: str
    images: list  # posedata.coco.Image, in file order
    category_ids: list[int]  # the categories evaluated; results and ground truth use the first
    merged: bool  # several categories evaluated as one class
    keypoint_names: list[str]  # evaluated keypoints, in the file's order
    skeleton_to_eval: np.ndarray  # (K,) position of skeleton keypoint i among them, -1 dropped
    eval_to_skeleton: np.ndarray  # (n_eval,) skeleton keypoint of each evaluated keypoint
    sigmas: np.ndarray  # (n_eval,)
    coco: dict[str, Any] = field(repr=False)  # sanitised ground truth for pycocotools
    gt_by_image: dict[int, np.ndarray] = field(repr=False, default_factory=dict)  # image id -> (G, n_eval, 3)


def load_ground_truth(coco_json: Path, skeleton, category_id: int | None = None) -> GroundTruth:
    """Read and check a COCO keypoint file against the skeleton; located InputErrors otherwise.

    Several keypoint categories sharing one keypoint list (AP-10K's species) are evaluated as one
    object class unless category_id picks one: the sanitised ground truth then carries a single
    category (the first id). (COCOeval's useCats = 0 would be the natural switch, but its keypoint
    similarity ignores it and finds no pairs.)"""
    from posedata.coco import load as load_coco
    from posedata.errors import SkeletonError

    file = str(coco_json)
    ds = load_coco(coco_json)
    kcats = [c for c in ds.categories if c.keypoints]
    if category_id is not None:
        cats = [ds.category(category_id)]
    elif len(kcats) == 1:
        cats = kcats
    elif kcats and all(c.keypoints == kcats[0].keypoints for c in kcats):
        cats = kcats
    else:
        cats = [ds.category(None)]  # raises the located "choose one" error
    names = cats[0].keypoints
    try:
        src = skeleton.source_index(names)
    except SkeletonError as e:
        raise InputError(e.message, file=file, where="categories") from None
    used = np.flatnonzero(src >= 0)
    eval_idx = np.sort(src[used])  # dataset indices evaluated, in the file's order
    pos = {int(d): n for n, d in enumerate(eval_idx)}
    skel_to_eval = np.array([pos[int(d)] if d >= 0 else -1 for d in src], dtype=np.int64)
    eval_to_skel = np.empty(len(eval_idx), dtype=np.int64)
    eval_to_skel[skel_to_eval[used]] = used
    sigmas = skeleton.sigmas_array[eval_to_skel]
    cat_ids = [c.id for c in cats]
    img_ids = {im.id for im in ds.images}
    anns = []
    gt_by_image: dict[int, list] = {}
    n = len(names)
    for i, a in enumerate(ds.annotations):
        if a.category_id not in cat_ids:
            continue
        where = f"annotations[{i}]"
        if a.image_id not in img_ids:
            raise InputError(f"image_id {a.image_id} is not in images", file=file, where=f"{where}.image_id")
        kp = np.zeros((n, 3)) if a.keypoints is None else a.keypoints
        if kp.shape != (n, 3):
            raise InputError(f"expected {3 * n} numbers ({n} keypoints of category {a.category_id}), got {kp.size}",
                             file=file, where=f"{where}.keypoints")
        if not np.isfinite(kp).all():
            raise InputError("keypoints must be finite numbers", file=file, where=f"{where}.keypoints")
        ek = kp[eval_idx]
        lab = ek[:, 2] > 0
        bbox = a.bbox
        if bbox is None:
            if lab.any():
                x0, y0 = ek[lab, :2].min(0)
                x1, y1 = ek[lab, :2].max(0)
                bbox = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            else:
                bbox = (0.0, 0.0, 0.0, 0.0)
        area = a.area if a.area is not None else float(bbox[2] * bbox[3])
        anns.append({"id": a.id, "image_id": a.image_id, "category_id": cat_ids[0],
                     "keypoints": ek.ravel().tolist(), "num_keypoints": int(lab.sum()),
                     "bbox": list(bbox), "area": float(area), "iscrowd": int(bool(a.iscrowd))})
        if not a.iscrowd:
            gt_by_image.setdefault(a.image_id, []).append(ek)
    coco = {
        "images": [{"id": im.id, "file_name": im.file_name, "width": im.width, "height": im.height} for im in ds.images],
        "annotations": anns,
        "categories": [{"id": cat_ids[0], "name": " + ".join(c.name for c in cats),
                        "keypoints": [names[d] for d in eval_idx], "skeleton": []}],
    }
    return GroundTruth(file=file, images=list(ds.images), category_ids=cat_ids, merged=len(cats) > 1,
                       keypoint_names=[names[d] for d in eval_idx], skeleton_to_eval=skel_to_eval,
                       eval_to_skeleton=eval_to_skel, sigmas=sigmas, coco=coco,
                       gt_by_image={k: np.stack(v) for k, v in gt_by_image.items()})


def image_paths(gt: GroundTruth, images_dir: Path) -> list[Path]:
    """Every image's path, checked to exist inside images_dir before any inference runs."""
    from posedata.io import safe_image_path

    out = []
    for i, im in enumerate(gt.images):
        where = f"images[{i}].file_name"
        try:
            p = safe_image_path(images_dir, im.file_name)
        except InputError as e:
            raise InputError(e.message, file=gt.file, where=where) from None
        if not p.is_file():
            raise InputError(f"image {im.file_name!r} not found in {str(images_dir)!r}", file=gt.file, where=where)
        out.append(p)
    return out


def read_image(path: Path, file: str | None = None, where: str | None = None) -> np.ndarray:
    """posedata's image reader (header checked first, so a 30000 x 30000 "image bomb" is refused
    before anything is decoded), with the error located in the JSON that named the image."""
    from posedata.images import read_image as decode

    try:
        return decode(Path(path))
    except InputError as e:
        raise InputError(f"cannot decode image {str(path)!r}: {e.message}", file=file or e.file, where=where) from None


# ------------------------------------------------------------------ COCOeval
def coco_eval(gt: GroundTruth, results: list[dict]) -> tuple[dict[str, float], list[dict]]:
    """Run COCOeval (keypoints, the skeleton's sigmas). Returns (stats by name, per-keypoint stats)."""
    n_gt = sum(1 for a in gt.coco["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)
    if not results:
        value = 0.0 if n_gt else -1.0
        return {k: value for k in STATS}, _per_keypoint(gt, [], None)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # pycocotools prints progress; the library must stay silent
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt.coco)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(gt.sigmas, dtype=np.float64)
        ev.params.imgIds = [im.id for im in gt.images]
        ev.params.catIds = [gt.category_ids[0]]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {k: float(v) for k, v in zip(STATS, ev.stats, strict=True)}
    return stats, _per_keypoint(gt, results, ev)


def _per_keypoint(gt: GroundTruth, results: list[dict], ev) -> list[dict]:
    """Per evaluated keypoint, over the instance pairs COCOeval matched at OKS 0.5 (area "all"):
    labelled = ground-truth keypoints labelled in matched instances, found_rate = share of them
    the detection holds, oks = mean per-keypoint similarity exp(-d^2 / (2 s^2 (2 sigma)^2)) with
    a missing detection counting 0, pck = share with similarity >= 0.5, error_px = mean distance
    where found. gt_labelled counts the keypoint over all non-crowd ground truth."""
    n = len(gt.keypoint_names)
    gt_lab = np.zeros(n, dtype=np.int64)
    for a in gt.coco["annotations"]:
        if not a["iscrowd"]:
            gt_lab += np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] > 0
    lab = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=np.int64)
    ks_sum = np.zeros(n)
    pck = np.zeros(n, dtype=np.int64)
    err_sum = np.zeros(n)
    matched = 0
    if ev is not None:
        all_rng = ev.params.areaRng[0]
        t = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
        var = (2 * gt.sigmas) ** 2
        for e in ev.evalImgs:
            if e is None or list(e["aRng"]) != list(all_rng):
                continue
            for d_id, g_id in zip(e["dtIds"], e["dtMatches"][t], strict=True):
                if not g_id:
                    continue
                g = ev.cocoGt.anns[int(g_id)]
                d = ev.cocoDt.anns[int(d_id)]
                gk = np.asarray(g["keypoints"], dtype=np.float64).reshape(-1, 3)
                dk = np.asarray(d["keypoints"], dtype=np.float64).reshape(-1, 3)
                labelled = gk[:, 2] > 0
                have = dk[:, 2] > 0
                d2 = ((gk[:, :2] - dk[:, :2]) ** 2).sum(1)
                ks = np.exp(-d2 / var / (g["area"] + np.spacing(1)) / 2)
                ks = np.where(have, ks, 0.0)
                matched += 1
                lab += labelled
                found += labelled & have
                ks_sum += np.where(labelled, ks, 0.0)
                pck += labelled & (ks >= 0.5)
                err_sum += np.where(labelled & have, np.sqrt(d2), 0.0)
    out = []
    for j, name in enumerate(gt.keypoint_names):
        out.append({
            "keypoint": name,
            "gt_labelled": int(gt_lab[j]),
            "labelled": int(lab[j]),
            "found_rate": float(found[j] / lab[j]) if lab[j] else None,
            "oks": float(ks_sum[j] / lab[j]) if lab[j] else None,
            "pck": float(pck[j] / lab[j]) if lab[j] else None,
            "error_px": float(err_sum[j] / found[j]) if found[j] else None,
            "sigma": float(gt.sigmas[j]),
            "matched_instances": matched,
        })
    return out


# ------------------------------------------------------------------ evaluate
def evaluate(model, skeleton, coco_json: Path, images_dir: Path, input_size: int = 368, multiscale: bool = False,
             flip: bool = False, out_dir: Path | None = None, progress: Callable[[int, int], None] | None = None,
             category_id: int | None = None, stride: int = 8, overlays: int = 4,
             params: GroupingParams | None = None) -> dict[str, Any]:
    """Run inference on every image of a COCO keypoint file, group, and score with COCOeval.

    Returns AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl, per_keypoint (list of dicts),
    results (COCO results list), n_images, n_detections. With out_dir, writes results.json,
    metrics.json and overlay PNGs of the first `overlays` images (atomically, after all images
    ran: an error part-way leaves no partial output). `progress(done, total)` after each image."""
    gt = load_ground_truth(Path(coco_json), skeleton, category_id)
    paths = image_paths(gt, Path(images_dir))
    results: list[dict] = []
    drawn: list[tuple[int, np.ndarray]] = []
    cat_out = gt.category_ids[0]
    n_eval = len(gt.keypoint_names)
    for i, (im, p) in enumerate(zip(gt.images, paths, strict=True)):
        img = read_image(p, gt.file, f"images[{i}].file_name")
        det = detect(model, img, skeleton, input_size, stride, multiscale, flip, params)
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


def output_paths(out_dir: Path) -> list[Path]:
    """The fixed-name outputs of `evaluate` (for the CLI's exists-check before any work)."""
    return [out_dir / "results.json", out_dir / "metrics.json"]


# ------------------------------------------------------------------ drawing
def _bgr(hex_or_rgb: Any) -> tuple[int, int, int]:
    if isinstance(hex_or_rgb, str):
        s = hex_or_rgb.lstrip("#")
        r, g, b = (int(s[i:i + 2], 16) for i in (0, 2, 4))
    else:
        r, g, b = hex_or_rgb
    return int(b), int(g), int(r)


def keypoint_colors(skeleton) -> list[tuple[int, int, int]]:
    """BGR per keypoint: the skeleton file's colours where given, else by side."""
    from posedata.plots import SIDE_COLORS

    return [_bgr(skeleton.colors[k]) if k in skeleton.colors else _bgr(SIDE_COLORS[skeleton.side(i)])
            for i, k in enumerate(skeleton.keypoints)]


def draw_poses(image_bgr: np.ndarray, poses: np.ndarray, skeleton, gt: np.ndarray | None = None) -> np.ndarray:
    """A copy of the image with instances drawn: limbs and keypoints in side colours (left, right,
    centre as in posedata's plots; a limb takes the colour of its end farther from the root), and
    ground-truth keypoints, when given (skeleton order, x < 0 missing), as white rings."""
    import cv2

    img = image_bgr.copy()
    h, w = img.shape[:2]
    t = max(1, int(round(min(h, w) / 250)))
    cols = keypoint_colors(skeleton)
    far_end = {li: new for li, _known, new in skeleton.grouping_steps}
    if gt is not None:
        for inst in gt:
            for x, y, _ in inst:
                if x >= 0:
                    cv2.circle(img, (int(round(x)), int(round(y))), 3 * t, (255, 255, 255), max(1, t // 2), cv2.LINE_AA)
    for pose in poses:
        for li, (a, b) in enumerate(skeleton.limbs):
            if pose[a, 0] >= 0 and pose[b, 0] >= 0:
                cv2.line(img, (int(round(pose[a, 0])), int(round(pose[a, 1]))),
                         (int(round(pose[b, 0])), int(round(pose[b, 1]))), cols[far_end[li]], t, cv2.LINE_AA)
        for k, (x, y, _) in enumerate(pose):
            if x >= 0:
                c = (int(round(x)), int(round(y)))
                cv2.circle(img, c, 2 * t + 1, cols[k], -1, cv2.LINE_AA)
                cv2.circle(img, c, 2 * t + 1, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_png(path: Path, image_bgr: np.ndarray) -> None:
    import cv2

    from posedata.io import atomic_write_bytes

    ok, buf = cv2.imencode(".png", image_bgr)
    if not ok:
        raise PosedataError("PNG encoding failed", file=str(path))
    atomic_write_bytes(path, buf.tobytes())


# ------------------------------------------------------------------ infer
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
          params: GroupingParams | None = None) -> dict[str, Any]:
    """Detect on each image; write <stem>.png (drawn poses) per image and results.json, a COCO
    dataset (images, annotations with a score, the skeleton's category; found keypoints v = 2 at
    x + 0.5, y + 0.5 like val's results). Images are all decoded first: a corrupt one stops the run
    before anything is written. Returns the COCO dict."""
    from posedata.io import atomic_write_json

    cat = coco_category(skeleton)
    target = skeleton.source_index(cat["keypoints"])
    n_kp = len(cat["keypoints"])
    for p in images:
        read_image(p)
    stems: dict[str, int] = {}
    coco: dict[str, Any] = {"info": {"description": f"posedata infer, skeleton {skeleton.name}"},
                            "images": [], "annotations": [], "categories": [cat]}
    drawn = []
    for i, p in enumerate(images):
        img = read_image(p)
        det = detect(model, img, skeleton, input_size, stride, multiscale, flip, params)
        kps = to_coco_keypoints(det.poses, target, n_kp, visible=2)
        scores = instance_scores(det, skeleton)
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
        drawn.append((out_dir / f"{name}.png", draw_poses(img, det.poses, skeleton)))
        if progress is not None:
            progress(i + 1, len(images))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, img in drawn:
        write_png(path, img)
    atomic_write_json(out_dir / "results.json", coco, indent=1)
    return coco


# ------------------------------------------------------------------ model loading
def load_model(checkpoint: Path, skeleton, device: str = "cpu"):
    """A model for inference from a posedata checkpoint (skeleton fingerprint checked) or from a
    reference-layout checkpoint whose heads fit the skeleton (e.g. the reference's COCO weights
    with openpose18). Returns (model in eval mode, description)."""
    from . import checkpoint as C
    from .model import for_skeleton

    ckpt = C.load(checkpoint)
    if ckpt.get("format") == C.FORMAT:
        C.check_fingerprint(ckpt, skeleton, str(checkpoint))
        model, ckpt = C.load_model(checkpoint, skeleton, device)
        spec = ckpt.get("model", {})
        return model, f"posedata checkpoint, {spec.get('stages', '?')} refinement stage(s), width {spec.get('width', '?')}"
    state = ckpt["state_dict"]
    _layout, prefix = C.detect_layout(state)
    names = [k[len(prefix):] for k in state]
    stages = len({n.split(".")[1] for n in names if n.startswith("refinement_stages.")})
    model = for_skeleton(skeleton, stages=stages)
    report = C.load_partial(model, state)
    if report.not_loaded:
        mism = [f"{k} {list(a)} vs {list(b)}" for k, (a, b) in list(report.shape_mismatch.items())[:3]]
        raise InputError(
            f"checkpoint does not fit skeleton {skeleton.name!r} ({skeleton.num_heatmaps} heatmaps, "
            f"{skeleton.num_pafs} PAFs): {len(report.shape_mismatch)} tensor(s) differ in shape"
            f"{' (' + '; '.join(mism) + ')' if mism else ''}, {len(report.missing)} missing", file=str(checkpoint))
    return model.to(device).eval(), f"reference-layout checkpoint, {stages} refinement stage(s)"


# ------------------------------------------------------------------ ONNX
def last_stage(model):
    """A module returning only the model's last stage (heatmaps, pafs): what inference uses."""
    import torch

    class LastStage(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            outs = self.m(x)
            return outs[-2], outs[-1]

    return LastStage(model)


def export_onnx(model, path: Path, input_size: int = 368, opset: int = 17, seed: int = 0) -> dict[str, Any]:
    """Export the last stage's outputs to ONNX (dynamic batch, height and width), then run the
    file with onnxruntime on a random input and compare with PyTorch. Writes only if the check
    passes (max |difference| <= 1e-4); returns the comparison."""
    import tempfile

    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("onnxruntime is not installed; install the optional extra: pip install 'posedata[onnx]'") from None
    from posedata.io import atomic_write_bytes

    net = last_stage(model).eval()
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, 3, input_size, input_size, generator=g) - 0.5)
    with torch.inference_mode():
        ref_heat, ref_pafs = (t.numpy() for t in net(x))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        # the TorchScript exporter (the dynamo one needs onnxscript) warns that it is legacy
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), str(tmp_path), input_names=["image"], output_names=["heatmaps", "pafs"],
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "heatmaps": {0: "batch", 2: "map_height", 3: "map_width"},
                                            "pafs": {0: "batch", 2: "map_height", 3: "map_width"}},
                              opset_version=opset, dynamo=False)
        data = tmp_path.read_bytes()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    heat, pafs = sess.run(["heatmaps", "pafs"], {"image": x.numpy()})
    diff = max(float(np.abs(heat - ref_heat).max()), float(np.abs(pafs - ref_pafs).max()))
    info = {"max_abs_diff": diff, "tolerance": 1e-4, "input_shape": list(x.shape),
            "heatmaps_shape": list(heat.shape), "pafs_shape": list(pafs.shape), "opset": opset, "bytes": len(data)}
    if not diff <= 1e-4:
        err = PosedataError(f"ONNX output differs from PyTorch by {diff:.3g} (> 1e-4); not written", file=str(path))
        err.exit_code = 1
        raise err
    atomic_write_bytes(path, data)
    return info
