"""COCO-format results and COCOeval for any skeleton.

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
"""
from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError

from .predict import Detections

STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


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
