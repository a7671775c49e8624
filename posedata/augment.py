"""Training-time augmentation for any skeleton, composed into one affine warp.

The reference (../shared/reference/lwop-conventions.md, section 2) scales the whole image, rotates
the whole scaled image onto an enlarged canvas, crops 368 x 368 around the shifted person centre
and maybe flips: four full-image passes. Every one of those steps is affine, so here they are
composed into a single 2 x 3 matrix and the source image is warped straight into the crop
(cv2.warpAffine, bilinear, constant border 128), which is also one interpolation instead of two.

Points follow the reference's arithmetic exactly:
  scale     p -> s * p, s = target_dist / scale_provided * multiplier
  rotate    cv2.getRotationMatrix2D about the scaled image's centre, plus the shift that centres
            the enlarged canvas (int(h|sin| + w|cos|) x int(h|cos| + w|sin|))
  crop      p -> p - int(centre + offset - crop / 2)   (Python int(): truncation toward zero)
  flip      x -> crop_w - 1 - x, then keypoint i takes keypoint flip[i]
The image matrix equals the point matrix except for the scale step, where cv2.resize samples
destination pixel u at source (u + 0.5) / s - 0.5; that half-pixel term is kept, so the pixels
land where the reference's do and only the interpolation differs.

Keypoints that leave the crop keep their visibility, as in the reference: their Gaussians are
still drawn where they reach the map.

Masks: the crowd mask (1 outside crowd regions) is warped as float with the same image matrix
into the crop (bilinear, border 1), truncated to uint8 as the reference's uint8 crop buffer
truncates it (so a pixel touched by a crowd region at all is 0), and reduced to the map with
INTER_AREA in uint8, which rounds every cell to 0 or 1 as the reference's does. An image
without crowd regions has an all-ones mask and skips the warp. See bench/README.md
("augment") for the measured difference from the reference's four-pass sequence.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .targets import mask_to_map, render_targets, render_targets_batch

if TYPE_CHECKING:
    from .labels import Labels
    from .skeleton import Skeleton


@dataclass(frozen=True)
class AugmentConfig:
    """Defaults are the reference's."""

    scale_min: float = 0.5
    scale_max: float = 1.1
    target_dist: float = 0.6
    rotate_max: float = 40.0  # degrees, uniform in [-rotate_max, rotate_max]
    crop_w: int = 368
    crop_h: int = 368
    center_perturb: int = 40  # pixels, int((u - 0.5) * 2 * center_perturb) per axis
    flip_prob: float = 0.5
    pad: int = 128  # image border value (all three channels)
    stride: int = 8
    sigma: float = 7.0
    paf_thickness: float = 1.0
    input_size: int = 368  # scale_provided = bbox height / input_size

    @property
    def map_h(self) -> int:
        return self.crop_h // self.stride

    @property
    def map_w(self) -> int:
        return self.crop_w // self.stride


def check_input_size(size: int, stride: int = 8) -> None:
    """The network's input rule, one place for preview and train: whole maps of stride-sized cells."""
    if size < 2 * stride or size % stride:
        raise InputError(f"--input-size must be a multiple of {stride} and >= {2 * stride}, got {size}")


@dataclass
class Sample:
    # (crop_h, crop_w, 4) uint8 BGRX as warped (OpenCV's 4-channel warp is the fast one; the
    # network input is made from it directly); .image is its BGR view
    crop: np.ndarray
    mask: np.ndarray  # (map_h, map_w) float32, 0 on crowd regions
    keypoints: np.ndarray  # (N, K, 3) float32, crop coordinates, after flip and swap
    heatmaps: np.ndarray | None  # (K + 1, map_h, map_w) float32; None when made with targets=False
    pafs: np.ndarray | None  # (2L, map_h, map_w) float32; None when made with targets=False
    flipped: bool
    affine: np.ndarray  # (2, 3) float64: source point -> crop point (the keypoint transform)
    # (N, K, 3) float64: the keypoints the targets are drawn from (keypoints before float32 storage)
    points: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        """(crop_h, crop_w, 3) uint8 BGR: a view of crop, no copy."""
        return self.crop[..., :3]


@dataclass(frozen=True)
class Draw:
    """The random choices of one sample (kept so a caller can replay or vary one of them)."""

    scale_multiplier: float
    degree: float
    offset_x: int
    offset_y: int
    flip: bool


def draw_params(cfg: AugmentConfig, rng: np.random.Generator | None, augment: bool = True) -> Draw:
    """All random numbers of a sample, drawn in one fixed order from the generator."""
    if not augment:
        return Draw(1.0, 0.0, 0, 0, False)
    if rng is None:
        raise ValueError("augment=True needs a numpy Generator (pass augment=False for a fixed crop)")
    u = rng.random(5)
    return Draw(
        scale_multiplier=float((cfg.scale_max - cfg.scale_min) * u[0] + cfg.scale_min),
        degree=float((u[1] - 0.5) * 2 * cfg.rotate_max),
        offset_x=int((u[2] - 0.5) * 2 * cfg.center_perturb),
        offset_y=int((u[3] - 0.5) * 2 * cfg.center_perturb),
        # strict <, so flip_prob 0 never flips and 1 always does
        flip=bool(u[4] < cfg.flip_prob),
    )


def _h(m: np.ndarray) -> np.ndarray:
    out = np.empty((3, 3))  # several times cheaper than np.vstack, called 5 times per sample
    out[:2] = m
    out[2] = (0.0, 0.0, 1.0)
    return out


def sample_affines(
    width: int, height: int, objpos: Any, scale_provided: float, cfg: AugmentConfig, d: Draw
) -> tuple[np.ndarray, np.ndarray]:
    """(point matrix, image matrix), both 2 x 3, source -> crop, for one set of draws."""
    if not (scale_provided > 0 and math.isfinite(scale_provided)):
        raise InputError(f"scale_provided must be a positive number, got {scale_provided}")
    s = cfg.target_dist / scale_provided * d.scale_multiplier
    if not (math.isfinite(s) and max(width, height) * s < 2**31):
        # a bbox height of ~0 (scale_provided 1e-300) would overflow the integer sizes below
        raise InputError(f"scale_provided {scale_provided:g} scales the image by {s:g}; the instance's box is degenerate")
    # scaled image size as cv2.resize rounds it (the rotation centre and canvas depend on it)
    w1, h1 = int(np.rint(width * s)), int(np.rint(height * s))
    scale_pts = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
    half = 0.5 * (s - 1.0)
    scale_img = np.array([[s, 0.0, half], [0.0, s, half]])

    theta = math.radians(d.degree)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = w1 / 2, h1 / 2
    bound_w = int(h1 * abs(sin) + w1 * abs(cos))
    bound_h = int(h1 * abs(cos) + w1 * abs(sin))
    rot = np.array([  # cv2.getRotationMatrix2D(centre, degree, 1), then centred on the canvas
        [cos, sin, (1 - cos) * cx - sin * cy + bound_w / 2 - cx],
        [-sin, cos, sin * cx + (1 - cos) * cy + bound_h / 2 - cy],
    ])

    obj = np.asarray(objpos, dtype=np.float64).reshape(2)
    centre = rot @ np.array([obj[0] * s, obj[1] * s, 1.0])
    left = -int(centre[0] + d.offset_x - cfg.crop_w / 2)
    up = -int(centre[1] + d.offset_y - cfg.crop_h / 2)
    crop = np.array([[1.0, 0.0, left], [0.0, 1.0, up]])
    post = _h(crop) @ _h(rot)
    if d.flip:
        post = _h(np.array([[-1.0, 0.0, cfg.crop_w - 1.0], [0.0, 1.0, 0.0]])) @ post
    return (post @ _h(scale_pts))[:2], (post @ _h(scale_img))[:2]


def clean_keypoints(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """The reference's clean-up: a point at exactly (0, 0) or outside [0, w) x [0, h) is absent."""
    kp = np.array(keypoints, dtype=np.float64)
    x, y = kp[..., 0], kp[..., 1]
    bad = ((x == 0) & (y == 0)) | ~(x >= 0) | ~(x < width) | ~(y >= 0) | ~(y < height)
    kp[..., 2] = np.where(bad, 2.0, kp[..., 2])
    return kp


def make_sample(
    image: np.ndarray, keypoints: np.ndarray, objpos: Any, scale_provided: float,
    crowd_mask: np.ndarray | None, skeleton: Skeleton, cfg: AugmentConfig,
    rng: np.random.Generator | None, augment: bool = True, targets: bool = True,
    draw: Draw | None = None, source_size: tuple[int, int] | None = None,
    crop_out: np.ndarray | None = None,
) -> Sample:
    """One training sample from a decoded image and its instances (main instance first).

    keypoints (N, K, 3) in source pixels with internal visibility; crowd_mask (H, W), 1 outside
    crowd regions, or None for none. With augment=False: scale target_dist / scale_provided,
    no rotation, no centre offset, no flip (a deterministic centre crop, for previews).
    draw: the random choices, when the caller drew them already (draw_params) instead of rng.
    source_size: (width, height) of the full-size image that keypoints, objpos and crowd_mask
    refer to, when image is that image decoded at a reduced size (images.read_image(reduce=...)).
    crop_out: a (crop_h, crop_w, 4) uint8 array to warp into (Scratch.crop), which the sample's
    crop then is.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"image must be (H, W, 3) BGR or (H, W, 4) BGRX, got shape {image.shape}")
    height, width = image.shape[:2] if source_size is None else (source_size[1], source_size[0])
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (skeleton.num_keypoints, 3):
        raise InputError(
            f"keypoints must be (N, {skeleton.num_keypoints}, 3) for skeleton {skeleton.name!r}, "
            f"got {kp.shape}"
        )
    d = draw_params(cfg, rng, augment) if draw is None else draw
    if d.flip and not skeleton.flip_augment:
        # drawn all the same, so turning flips off leaves every other random choice as it was
        d = replace(d, flip=False)
    pts_m, img_m = sample_affines(width, height, objpos, scale_provided, cfg, d)

    size = (cfg.crop_w, cfg.crop_h)
    # OpenCV's bilinear warp has a much faster vectorised path for 4 channels than for 3: the
    # same crop, bit for bit, in about half the time (0.35 vs 0.82 ms on the real photos;
    # bench/README.md "augment"), so a BGR image is widened first (images.decode_image(channels=4)
    # decodes straight to BGRX) and the crop stays BGRX
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    crop = cv2.warpAffine(
        image, _reduced_matrix(img_m, image.shape[1], image.shape[0], width, height), size, dst=crop_out,
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(cfg.pad,) * 3 + (0,),
    )
    map_h, map_w = cfg.map_h, cfg.map_w
    crop_mask = None if crowd_mask is None else _crop_mask(crowd_mask, img_m, cfg.crop_w, cfg.crop_h)
    if crop_mask is None:
        mask = np.ones((map_h, map_w), dtype=np.float32)
    else:
        mask = mask_to_map(crop_mask, map_h, map_w)

    kp = clean_keypoints(kp, width, height)
    out = np.empty_like(kp)
    out[..., :2] = kp[..., :2] @ pts_m[:, :2].T + pts_m[:, 2]
    out[..., 2] = kp[..., 2]
    if d.flip:
        out = np.take(out, skeleton.flip_array, axis=1)  # faster than out[:, flip_array]
    heat = pafs = None
    if targets:
        heat, pafs = render_targets(out, skeleton, map_h, map_w, cfg.stride, cfg.sigma, cfg.paf_thickness)
    return Sample(crop=crop, mask=mask, keypoints=out.astype(np.float32), heatmaps=heat, pafs=pafs,
                  flipped=d.flip, affine=pts_m, points=out)


def _crop_mask(crowd_mask: np.ndarray, img_m: np.ndarray, crop_w: int, crop_h: int) -> np.ndarray | None:
    """The crowd mask in the crop as uint8 0/1, or None when no crowd pixel is in the source.

    The float mask is warped bilinearly with border 1 and truncated to uint8, as the reference's
    uint8 crop buffer truncates its interpolated mask: a pixel touched by a crowd region at all
    is 0. Only the crop pixels that can differ from 1 are warped: those whose sample point lies
    within a pixel of the crowd's bounding box in the source. Elsewhere the mask is 1, so the
    result is the full warp's (tested against it), and a small crowd region costs a small warp
    instead of a full-crop one.
    """
    import cv2

    m = np.asarray(crowd_mask)
    off = cv2.compare(m, 1, cv2.CMP_NE) if m.dtype == np.uint8 else (m != 1).astype(np.uint8)
    x, y, bw, bh = cv2.boundingRect(off)
    if bw == 0 or bh == 0:
        return None
    # a crop pixel reads source pixels within one pixel of its sample point, so only points
    # inside (x - 1, x + bw) x (y - 1, y + bh) can see the crowd; their image, with a margin
    # for rounding, bounds the crop pixels to warp
    corners = np.array([[x - 1, y - 1], [x + bw, y - 1], [x - 1, y + bh], [x + bw, y + bh]], dtype=np.float64)
    cc = corners @ img_m[:, :2].T + img_m[:, 2]
    rx0, ry0 = (max(int(math.floor(v)) - 2, 0) for v in cc.min(axis=0))
    rx1, ry1 = min(int(math.ceil(cc[:, 0].max())) + 3, crop_w), min(int(math.ceil(cc[:, 1].max())) + 3, crop_h)
    out = np.ones((crop_h, crop_w), dtype=np.uint8)
    if rx1 <= rx0 or ry1 <= ry0:
        return out  # the crowd is out of view
    # the crop window's offset folded into the matrix. (The whole source is passed: a source
    # window's offset would change OpenCV's fixed-point rounding of the sample points, and with
    # it, rarely, a pixel.)
    sub = img_m.copy()
    sub[:, 2] -= (rx0, ry0)
    part = cv2.warpAffine(np.asarray(m, dtype=np.float32), sub, (rx1 - rx0, ry1 - ry0),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
    out[ry0:ry1, rx0:rx1] = part.astype(np.uint8)
    return out


def reduction(scale: float) -> int:
    """The decode reduction (8, 4, 2 or 1) for an image that will be scaled by scale: the largest
    r with scale * r <= 1, so the warp from the 1/r image still reduces (or keeps) its size."""
    return next((r for r in (8, 4, 2) if scale * r <= 1.0), 1)


def _reduced_matrix(m: np.ndarray, w: int, h: int, full_w: int, full_h: int) -> np.ndarray:
    """The matrix m (full-size pixel -> crop) for an image decoded at w x h instead.

    libjpeg's 1/r decode gives ceil(full / r) pixels, pixel u averaging full-size pixels
    r*u .. r*u + r - 1, whose centre is (u + 0.5) * r - 0.5; a plain resize to w pixels puts it
    at (u + 0.5) * full / w - 0.5. Both are (u + 0.5) * f - 0.5 with f = r or full / w.
    """
    if (w, h) == (full_w, full_h):
        return m
    f = np.array([full_w / w, full_h / h])
    for i, (n, full) in enumerate(((w, full_w), (h, full_h))):
        r = round(full / n)
        if r > 1 and n == -(-full // r):  # ceil(full / r): libjpeg's scaled size
            f[i] = r
    red = np.array([[f[0], 0.0, 0.5 * f[0] - 0.5], [0.0, f[1], 0.5 * f[1] - 0.5], [0.0, 0.0, 1.0]])
    return m @ red


def training_sample(
    labels: Labels, i: int, images_root: Path, skeleton: Skeleton, cfg: AugmentConfig,
    rng: np.random.Generator | None, augment: bool = True, targets: bool = True,
    scratch: Scratch | None = None,
) -> Sample:
    """The training sample for record i of a label file: decode, crowd mask, augment, targets
    (targets=False leaves them to the caller: training_batch renders a whole batch at once).

    With scratch, the decode and the crop reuse its buffers: the sample's crop is then valid
    only until the scratch's next use (training_batch takes the network input from it at once).
    """
    from .images import decode_image
    from .io import safe_image_path
    from .targets import crowd_mask as render_crowd

    if not 0 <= i < labels.num_samples:
        raise InputError(f"sample index {i} out of range (the label file has {labels.num_samples})")
    rec = labels.sample(i)
    try:
        path = safe_image_path(images_root, rec["file_name"])
    except InputError as e:  # name the data the path came from, not just the path
        raise InputError(e.message, file=labels.settings.get("source"),
                         where=f"image {rec['image_id']} file_name") from None
    scale_provided = float(labels.bbox[rec["main"], 3]) / cfg.input_size
    if not (scale_provided > 0 and math.isfinite(scale_provided)):
        raise InputError(f"sample {i}: main instance bbox height must be positive, got "
                         f"{labels.bbox[rec['main'], 3]}")
    d = draw_params(cfg, rng, augment)
    # the image is scaled by s; when s <= 1/r the full resolution is never seen, so a JPEG is
    # decoded at 1/r (cheaper) and warped by s * r <= 1, still a reduction (see bench/README.md)
    image, w, h = decode_image(path, reduction(cfg.target_dist / scale_provided * d.scale_multiplier),
                               channels=4, scratch=scratch)
    if (h, w) != (rec["height"], rec["width"]):
        # labels were made for another size: the reference would silently mis-scale; refuse
        raise InputError(
            f"image is {w}x{h} but the label file says {rec['width']}x{rec['height']}", file=str(path)
        )
    try:
        mask = render_crowd(rec["crowd"], h, w) if rec["crowd"] else None
    except InputError as e:  # a crowd region validate's V036 refuses: name the image it belongs to
        raise InputError(f"{e.message}; `posedata validate` reports it as V036", file=labels.settings.get("source"),
                         where=f"image {rec['image_id']} ({rec['file_name']}) crowd regions") from None
    return make_sample(image, rec["keypoints"], rec["objpos"], scale_provided, mask, skeleton, cfg,
                       rng, augment, targets, draw=d, source_size=(w, h),
                       crop_out=None if scratch is None else scratch.crop(cfg.crop_h, cfg.crop_w))


def to_network_input(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """BGR (H, W, 3) or BGRX (H, W, 4) uint8 -> float32 (3, H, W), (pixel - 128) / 256, written
    into out when given (a slice of a batch array, say)."""
    import cv2

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError(f"image must be (H, W, 3) BGR or (H, W, 4) BGRX, got shape {img.shape}")
    if out is None:
        out = np.empty((3,) + img.shape[:2], dtype=np.float32)
    elif out.shape != (3,) + img.shape[:2] or out.dtype != np.float32:
        raise InputError(f"out must be float32 {(3,) + img.shape[:2]}, got {out.dtype} {out.shape}")
    # plane by plane through cv2.split: several times faster than a float conversion of the
    # interleaved image followed by a transposing copy, and a 4-channel split is faster again
    # than a 3-channel one (0.14 vs 0.25 ms at 368 x 368). Each plane is finished while it is
    # in cache; x * (1 / 256) - 0.5 is exactly (x - 128) / 256 in float32 for every uint8 x.
    for c, plane in enumerate(cv2.split(np.ascontiguousarray(img, dtype=np.uint8))[:3]):
        o = out[c]
        o[...] = plane
        o *= np.float32(1.0 / 256.0)
        o -= np.float32(0.5)
    return out


class Scratch:
    """Reusable buffers for making training samples in one process.

    The decoded photo and the warped crop live only while one sample is made. Fresh
    megabyte-sized arrays cost page faults on every sample (glibc returns large freed blocks to
    the system), which measured more than the warp itself; reusing these two buffers avoids that
    (bench/README.md "augment"). Not thread-safe: one Scratch per worker.
    """

    def __init__(self) -> None:
        self._decode = np.empty(0, dtype=np.uint8)
        self._crop = np.empty((0, 0, 4), dtype=np.uint8)

    def decode_buffer(self, nbytes: int) -> np.ndarray:
        if self._decode.size < nbytes:
            self._decode = np.empty(nbytes, dtype=np.uint8)
        return self._decode

    def crop(self, height: int, width: int) -> np.ndarray:
        if self._crop.shape[:2] != (height, width):
            self._crop = np.empty((height, width, 4), dtype=np.uint8)
        return self._crop


@dataclass
class Batch:
    """A training batch as the network takes it."""

    images: np.ndarray  # (B, 3, crop_h, crop_w) float32 network input
    heatmaps: np.ndarray  # (B, K + 1, map_h, map_w) float32
    pafs: np.ndarray  # (B, 2L, map_h, map_w) float32
    masks: np.ndarray  # (B, map_h, map_w) float32


def training_batch(
    labels: Labels, items: Sequence[tuple[int, np.random.Generator | None]], images_root: Path,
    skeleton: Skeleton, cfg: AugmentConfig, augment: bool = True, scratch: Scratch | None = None,
) -> Batch:
    """The training samples of items (record index, its generator), as batch arrays.

    Sample b equals training_sample(labels, i, ...) with its to_network_input, bit for bit, but
    the batch is made without a per-sample network input or target allocation: each network
    input is written straight into the batch array, the targets of all samples are rendered in
    one call (render_targets_batch shares NumPy's per-call cost), and the decode and the crop
    reuse scratch's buffers.
    """
    scratch = Scratch() if scratch is None else scratch
    n = len(items)
    images = np.empty((n, 3, cfg.crop_h, cfg.crop_w), dtype=np.float32)
    masks = np.empty((n, cfg.map_h, cfg.map_w), dtype=np.float32)
    points = []
    for b, (i, rng) in enumerate(items):
        s = training_sample(labels, i, images_root, skeleton, cfg, rng, augment, targets=False, scratch=scratch)
        to_network_input(s.crop, out=images[b])
        masks[b] = s.mask
        points.append(s.points)
    heat, pafs = render_targets_batch(points, skeleton, cfg.map_h, cfg.map_w, cfg.stride, cfg.sigma,
                                      cfg.paf_thickness)
    return Batch(images=images, heatmaps=heat, pafs=pafs, masks=masks)
