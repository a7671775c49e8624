"""Synthetic COCO keypoint data: drawn articulated figures for any skeleton file.

The data exists to prove the whole path (targets, flip, grouping, training) on a machine with no
download, so it must be learnable by a small CPU model and must not teach anything a flip-aware
trainer would contradict. Design decisions, and why:

The species (posedata/synth_species.py) and the drawing (posedata/synth_draw.py) have their own
modules; this one places figures in images and writes the dataset.

- A "species" (rest shape, limb lengths and widths, joint limits, marker shapes, stroke styles) is
  derived from the skeleton's fingerprint only, never from the seed: a training set and a held-out
  set generated with different seeds show the same creature.
- Identity comes from shape and pattern, not from a pixel colour: every keypoint type has a marker
  shape and every limb type a stroke texture, while colours are drawn per instance (limb hues keep a
  fixed offset from the instance's base hue, so colour relations carry a little information).
- Left and right: horizontal-flip augmentation mirrors an image and swaps the flip pairs' labels.
  A chiral cue (say, a dot on every left limb) would therefore sit on "left" in half the samples and
  on "right" in the other half. What survives the flip is a figure whose rest shape is mirror
  symmetric under the flip map, seen always from the same side: the left member of every pair sits
  on the image's left of the body axis (as a creature seen from behind or from above), pairs share
  marker shape, stroke style and length, and their joint limits mirror each other. The generator's
  distribution is then invariant under "mirror the image and swap the labels", and the side is
  learnable from the body frame (the axis' two ends look different), as with real people.
  Skeletons without flip pairs (a hand) are instead mirrored per instance at random, so both
  chiralities occur, as left and right hands do.
- Occluded keypoints (covered by a later figure or an occluder) are v=1, out-of-frame ones v=0
  with x = y = 0; derived keypoints (openpose18's neck) are drawn at the mean of their sources and
  left out of the JSON, which carries the skeleton's coco_keypoints.
- area is the bbox area by default: the reference selects training samples by area (>= 32 x 32),
  and a stick figure's silhouette is far thinner than a person's. For evaluation that makes OKS
  lenient (a box holds much more than a figure), so a held-out set meant for measuring AP is
  written with area="silhouette": the figure's drawn pixels, as COCO's area is a person's segment.
- Coordinates follow COCO's continuous convention (pixel i covers [i, i + 1)); drawing uses OpenCV's
  pixel-centre convention, hence the +0.5 when writing.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .io import check_replaceable, staged_dir
from .skeleton import Skeleton
from .synth_draw import SHIFT, background, draw_figure, fixed_point, occluder
from .synth_species import Species, make_species, pose

GENERATOR = "posedata synth 1"
COMMAND = "synth"  # the name in the marker of the folders it makes (io.MARKER)
MIN_SIZE, MAX_SIZE = 32, 4096


# ------------------------------------------------------------------- images
@dataclass
class _Figure:
    pos: np.ndarray  # (K, 2) OpenCV pixel-centre coordinates
    mask: np.ndarray  # (H, W) uint8 silhouette, unoccluded
    marker_r: np.ndarray  # (K,) marker radius in px


def _place(rng: np.random.Generator, sp: Species, sk: Skeleton, w: int, h: int, size: float,
           taken: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Pose a figure and move its bbox centre to a random point, avoiding near-coincident centres
    (the reference would drop the second one as a training sample anyway)."""
    angle = float(np.clip(rng.normal(0, 0.45), -1.2, 1.2))
    pos = pose(sp, rng, size, angle, sk)
    box_c = (pos.min(0) + pos.max(0)) / 2
    for _ in range(10):
        c = np.array([rng.uniform(0.12, 0.88) * w, rng.uniform(0.12, 0.88) * h])
        if all(np.hypot(*(c - t)) > 0.45 * size for t in taken):
            break
    return pos - box_c + c, angle


def _in_frame(pos: np.ndarray, w: int, h: int, margin: float) -> np.ndarray:
    """Shift a figure fully into the frame where it fits (centred where it does not): every image
    has one whole subject, so even a one-image dataset labels every keypoint type."""
    lo, hi = pos.min(0), pos.max(0)
    room = np.array([w - 1.0, h - 1.0]) - 2 * margin
    fits = hi - lo <= room
    shift = np.where(fits, np.clip(lo, margin, margin + room - (hi - lo)) - lo, (room + 2 * margin - lo - hi) / 2)
    return pos + shift


def _crowd(img: np.ndarray, rng: np.random.Generator, sp: Species, sk: Skeleton) -> np.ndarray:
    """A cluttered patch of many small figures; returns its polygon (OpenCV coordinates)."""
    import cv2

    h, w = img.shape[:2]
    m = min(h, w)
    centre = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    n_v = int(rng.integers(7, 12))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n_v))
    rad = rng.uniform(0.14, 0.24) * m * rng.uniform(0.8, 1.15, n_v)
    poly = centre + np.stack([np.cos(ang) * rad * rng.uniform(0.8, 1.3), np.sin(ang) * rad], 1)
    poly = np.clip(poly, 0, [w - 1, h - 1])
    patch = img.copy()
    lo, hi = poly.min(0), poly.max(0)
    for _ in range(int(rng.integers(6, 14))):
        size = rng.uniform(0.09, 0.16) * m
        angle = float(rng.uniform(-np.pi, np.pi))
        pos = pose(sp, rng, size, angle, sk)
        pos += rng.uniform(lo, hi) - (pos.min(0) + pos.max(0)) / 2
        draw_figure(patch, None, sp, sk, pos, angle, size, rng, min_px=1.0)
    region = np.zeros((h, w), np.uint8)
    cv2.fillPoly(region, [fixed_point(poly)], 255, cv2.LINE_8, SHIFT)
    img[region > 0] = patch[region > 0]
    return poly


def _visibility(idmap: np.ndarray, fid: int, pos: np.ndarray, r: np.ndarray, w: int, h: int) -> np.ndarray:
    """COCO v per keypoint: 0 out of frame, 2 when the centre and most of the marker show, else 1."""
    # COCO coordinates as written (2 decimals), so a point rounded onto the border counts as out
    x, y = np.round(pos[:, 0] + 0.5, 2), np.round(pos[:, 1] + 0.5, 2)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    off = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float64) * 0.5
    pts = pos[:, None, :] + off[None] * r[:, None, None]
    px = np.clip(np.round(pts[..., 0]).astype(int), 0, w - 1)
    py = np.clip(np.round(pts[..., 1]).astype(int), 0, h - 1)
    own = idmap[py, px] == fid
    seen = own[:, 0] & (own.sum(1) >= 3)
    return np.where(inside, np.where(seen, 2, 1), 0)


def _polygons(mask: np.ndarray) -> list[list[float]]:
    import cv2

    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        c = cv2.approxPolyDP(c, 0.8, True).reshape(-1, 2)
        if len(c) >= 3:
            out.append([round(float(v) + 0.5, 2) for v in c.reshape(-1)])
    return out


def render_image(sp: Species, sk: Skeleton, rng: np.random.Generator, w: int, h: int,
                 crowd: bool) -> tuple[np.ndarray, list[dict], list[np.ndarray]]:
    """One image: (BGR uint8, per-figure records with COCO keypoints in skeleton order, crowd
    polygons in COCO coordinates)."""
    import cv2

    m = min(w, h)
    img = background(rng, h, w)
    crowds = []
    if crowd:
        crowds.append(_crowd(img, rng, sp, sk) + 0.5)
    n = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
    idmap = np.zeros((h, w), np.uint8)
    figs: list[_Figure] = []
    centres: list[np.ndarray] = []
    for fi in range(n):
        size = rng.uniform(0.38, 0.8) * m
        pos, angle = _place(rng, sp, sk, w, h, size, centres)
        if fi == 0:
            pos = _in_frame(pos, w, h, margin=3.0)
        centres.append((pos.min(0) + pos.max(0)) / 2)
        mask = np.zeros((h, w), np.uint8)
        draw_figure(img, mask, sp, sk, pos, angle, size, rng)
        idmap[mask > 0] = fi + 1
        r = np.maximum(1.6, sp.marker_size * size)
        figs.append(_Figure(pos, mask, r))
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 3))):
            f = figs[int(rng.integers(0, n))]
            occluder(img, idmap, rng, f.pos[int(rng.integers(0, len(f.pos)))], m)
    sigma = rng.uniform(0, 7)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    if sigma > 0.5:
        img = np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32), 0, 255).astype(np.uint8)
    records = []
    for fi, f in enumerate(figs):
        if not f.mask.any():
            continue
        v = _visibility(idmap, fi + 1, f.pos, f.marker_r, w, h)
        if not (v > 0).any():
            continue
        rows, cols = np.any(f.mask, 1), np.any(f.mask, 0)
        y0, y1 = np.flatnonzero(rows)[[0, -1]]
        x0, x1 = np.flatnonzero(cols)[[0, -1]]
        kp = np.concatenate([np.round(f.pos + 0.5, 2), v[:, None]], 1)
        kp[v == 0, :2] = 0
        records.append({"keypoints": kp, "bbox": [int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)],
                        "segmentation": _polygons(f.mask), "silhouette": int(np.count_nonzero(f.mask))})
    return img, records, crowds


# ------------------------------------------------------------------ dataset
def parse_size(text: str) -> tuple[int, int]:
    """'160x160' -> (160, 160); a single number means a square."""
    s = str(text).lower().replace(" ", "")
    parts = s.split("x")
    try:
        wh = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else None
    except ValueError:
        wh = None
    if wh is None or not all(MIN_SIZE <= v <= MAX_SIZE for v in wh):
        raise InputError(f"size must be WIDTHxHEIGHT with each side in [{MIN_SIZE}, {MAX_SIZE}], got {text!r}",
                         where="--size")
    return wh


def _category(sk: Skeleton) -> dict:
    names = list(sk.coco_keypoints)
    src = sk.source_index(names)
    edges = [[int(src[a]) + 1, int(src[b]) + 1] for a, b in sk.limbs if src[a] >= 0 and src[b] >= 0]
    return {"id": 1, "name": sk.name, "supercategory": "figure", "keypoints": names, "skeleton": edges}


def _r(v: float) -> float | int:
    f = round(float(v), 2)
    return int(f) if f.is_integer() else f


@dataclass(frozen=True)
class SynthResult:
    """What synthesize() wrote: the annotations file and what it holds."""

    path: Path
    images: int
    figures: int
    crowd_regions: int
    visibility: tuple[int, int, int]  # the figures' keypoints with v = 0 (out of frame), 1 (occluded), 2

    def shares(self) -> tuple[float, float, float]:
        """The fractions of v = 0, 1, 2 among the figures' keypoints."""
        total = max(1, sum(self.visibility))
        return self.visibility[0] / total, self.visibility[1] / total, self.visibility[2] / total


def generate(skeleton: Skeleton, out_dir: Path, n_images: int, size: tuple[int, int], seed: int,
             progress: Callable[[int, int], None] | None = None, area: str = "bbox") -> Path:
    """synthesize()'s annotations path."""
    return synthesize(skeleton, out_dir, n_images, size, seed, progress, area).path


def synthesize(skeleton: Skeleton, out_dir: Path, n_images: int, size: tuple[int, int], seed: int,
               progress: Callable[[int, int], None] | None = None, area: str = "bbox") -> SynthResult:
    """Write n_images drawn images to out_dir/images/ and out_dir/annotations.json; returns the
    annotations path and its counts. `area` of each figure: "bbox" (its box) or "silhouette" (its drawn pixels,
    unoccluded; see the module docstring). Everything is written into a temporary sibling folder first and moved into
    place at the end, so an interrupted run leaves no dataset that looks complete. An existing
    out_dir is replaced only if synth made it (its io.MARKER names synth); the caller decides
    whether replacing is allowed at all (io.claim_output with --force)."""
    import cv2

    out_dir = Path(out_dir)
    w, h = int(size[0]), int(size[1])
    if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        raise InputError(f"image size {w}x{h} outside [{MIN_SIZE}, {MAX_SIZE}]")
    if n_images < 1:
        raise InputError(f"need at least one image, got {n_images}")
    if area not in ("bbox", "silhouette"):
        raise InputError(f"area must be 'bbox' or 'silhouette', got {area!r}")
    silhouette = area == "silhouette"
    check_replaceable(out_dir, COMMAND)
    sp = make_species(skeleton)
    src = skeleton.source_index(list(skeleton.coco_keypoints))
    keep = np.flatnonzero(src >= 0)
    order = keep[np.argsort(src[keep])]  # skeleton index of each COCO keypoint, in COCO order
    plan = np.random.default_rng([seed, 0])
    crowd_flags = plan.random(n_images) < 0.15
    if n_images >= 2 and not crowd_flags.any():
        crowd_flags[n_images // 2] = True

    with staged_dir(out_dir, COMMAND) as tmp:
        (tmp / "images").mkdir()
        images, anns = [], []
        for i in range(n_images):
            rng = np.random.default_rng([seed, 1, i])
            img, records, crowds = render_image(sp, skeleton, rng, w, h, bool(crowd_flags[i]))
            name = f"{i + 1:06d}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise InputError(f"OpenCV could not encode {name}")
            (tmp / "images" / name).write_bytes(buf.tobytes())
            images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
            _add_annotations(anns, i + 1, records, crowds, order, silhouette)
            if progress is not None:
                progress(i + 1, n_images)
        data = {
            "info": {"description": f"posedata synthetic figures for skeleton {skeleton.name}",
                     "generator": GENERATOR, "skeleton": skeleton.name, "fingerprint": skeleton.fingerprint,
                     "seed": int(seed), "size": [w, h]},
            "licenses": [],
            "images": images,
            "annotations": anns,
            "categories": [_category(skeleton)],
        }
        (tmp / "annotations.json").write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    figures = [a for a in anns if not a["iscrowd"]]
    vis = np.bincount(np.array([v for a in figures for v in a["keypoints"][2::3]], dtype=np.int64), minlength=3)
    return SynthResult(out_dir / "annotations.json", n_images, len(figures), len(anns) - len(figures),
                       (int(vis[0]), int(vis[1]), int(vis[2])))


def _add_annotations(anns: list[dict], image_id: int, records: list[dict], crowds: list[np.ndarray],
                     order: np.ndarray, silhouette: bool) -> None:
    """Append one image's figures (keypoints in COCO order) and crowd regions to `anns`."""
    for rec in records:
        kp = rec["keypoints"][order]
        flat: list[float | int] = []
        for x, y, v in kp.tolist():
            flat += [_r(x), _r(y), int(v)]
        bx = rec["bbox"]
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                     "keypoints": flat, "num_keypoints": int((kp[:, 2] > 0).sum()), "bbox": bx,
                     "area": rec["silhouette"] if silhouette else int(bx[2] * bx[3]),
                     "segmentation": rec["segmentation"]})
    for poly in crowds:
        x0, y0 = poly.min(0)
        x1, y1 = poly.max(0)
        area = 0.5 * abs(float(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1))))
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 1,
                     "keypoints": [0] * (3 * len(order)), "num_keypoints": 0,
                     "bbox": [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)], "area": _r(area),
                     "segmentation": [[_r(v) for v in poly.reshape(-1)]]})
