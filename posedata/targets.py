"""Training targets for any skeleton: keypoint heatmaps, part affinity fields and loss masks.

Semantics follow the reference trainer exactly (../shared/reference/lwop-conventions.md, section 3),
so that for its own 18-point skeleton the maps agree with it to float32 rounding:

- heatmaps: map cell m has image-space centre m * stride + stride / 2 - 0.5; a keypoint touches the
  cells of its window [p - 4 sigma, p + 4 sigma] (ends truncated to int, clipped to the map extent,
  then integer-divided by the stride, upper end exclusive); a cell is skipped when its exponent
  d^2 / 2 / sigma / sigma exceeds 4.6052 (ln 100, the reference's literal); the Gaussians of all
  instances are summed, then clipped to 1; the background channel is 1 - max over keypoints.
- PAFs: ends are divided by the stride; for limb (a, b) with both ends labelled (v <= 1) and
  length >= 1e-7, every integer cell (x, y) of the box
  [int(max(min(xa, xb) - t, 0)), int(min(max(xa, xb) + t, map_w))) x (same for y) whose distance to
  the line, |(x - xa) * uy - (y - ya) * ux|, is <= t is set to the unit vector (ux, uy).
  Later instances overwrite earlier ones. Note the PAF grid uses integer cell coordinates, not the
  heatmaps' cell centres: that half-cell asymmetry is the reference's and is kept.

Everything is vectorised over instances x keypoints (or limbs) x window cells, with no Python
loop. "Later instances overwrite" is resolved with an unbuffered ufunc.at, because NumPy does not
define which value wins when a fancy-index assignment repeats an index.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    from .skeleton import Skeleton

# The reference's literal cut-off (ln(100) rounded); kept as written for bit-level parity.
EXPONENT_CUTOFF = 4.6052
N_SIGMA = 4  # window half-size in sigmas
MIN_LIMB_LENGTH = 1e-7  # in map cells; shorter limbs draw no PAF


def _as_keypoints(keypoints: Any) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise InputError(f"keypoints must have shape (N, K, 3), got {np.shape(keypoints)}")
    return kp


@lru_cache(maxsize=64)
def _d2_threshold(sigma: float) -> float:
    """Largest float64 d2 with d2 / 2 / sigma / sigma <= EXPONENT_CUTOFF.

    That expression is monotone in d2, so one comparison against this threshold decides
    exactly as the reference's three-operation test does, without dividing every cell.
    """
    def exponent(d2: float) -> float:
        return d2 / 2 / sigma / sigma

    t = EXPONENT_CUTOFF * 2 * sigma * sigma
    while exponent(t) > EXPONENT_CUTOFF:
        t = float(np.nextafter(t, -np.inf))
    while exponent(float(np.nextafter(t, np.inf))) <= EXPONENT_CUTOFF:
        t = float(np.nextafter(t, np.inf))
    return t


def _valid_points(kp: np.ndarray) -> np.ndarray:
    """(N, K) bool: labelled (internal v <= 1) with finite coordinates."""
    return (kp[..., 2] <= 1) & np.isfinite(kp[..., 0] + kp[..., 1])


# Layout note: window arrays are (..., P) with the point (or limb segment) axis last. Windows are
# only a few cells wide, so putting them innermost would make NumPy's broadcasting loops run
# many tiny inner loops; with P innermost every loop is long and contiguous.


def render_heatmaps(
    keypoints: np.ndarray, map_h: int, map_w: int, stride: int = 8, sigma: float = 7.0
) -> np.ndarray:
    """Keypoints (N, K, 3) in input-image pixels -> float32 (K + 1, map_h, map_w), background last."""
    kp = _as_keypoints(keypoints)
    n, k = kp.shape[:2]
    out = np.zeros((k + 1, map_h, map_w), dtype=np.float32)
    sel = np.flatnonzero(_valid_points(kp).ravel())
    if not (sel.size and map_h and map_w):
        out[k] = 1.0
        return out
    xy = kp.reshape(-1, 3)[sel, :2].T  # (2, P)
    r = N_SIGMA * sigma
    ext = np.array([[map_w], [map_h]])
    # window ends: int() of the pixel bounds clipped to the map's pixel extent, then // stride.
    # Clipping before the int() only avoids overflow; a range starting at 0 or ending at the
    # extent covers the same cells either way, and x >= 0 makes int() a floor.
    lo = np.minimum(np.maximum(xy - r, 0.0), ext * stride).astype(np.int64) // stride
    hi = np.minimum(np.maximum(xy + r, 0.0), ext * stride).astype(np.int64) // stride
    span = int((hi - lo).max())
    if span <= 0:
        out[k] = 1.0
        return out
    cell = lo[:, None, :] + np.arange(span)[:, None]  # (2, span, P): x cells, y cells
    d = (cell * stride + (stride / 2 - 0.5)) - xy[:, None, :]
    d *= d
    d[cell >= hi[:, None, :]] = np.inf  # past the window's exclusive end
    # squared distances summed exactly as the reference sums them, so the cut-off decides the same
    d2 = d[1][:, None, :] + d[0][None, :, :]  # (span_y, span_x, P)
    # the Gaussian factors per axis; the product differs from exp of the sum by rounding only
    g = np.exp(d * (-1.0 / (2.0 * sigma * sigma))).astype(np.float32)
    val = g[1][:, None, :] * g[0][None, :, :]
    val[d2 > _d2_threshold(float(sigma))] = 0.0
    np.minimum(cell, ext[:, :, None] - 1, out=cell)  # out-of-window cells carry 0: any index works
    rows = (sel % k * map_h) + cell[1]
    rows *= map_w
    idx = (rows[:, None, :] + cell[0][None, :, :]).ravel()
    flat = out.reshape(-1)
    np.add.at(flat, idx, val.ravel())
    if n > 1:  # one instance adds at most 1 per cell; only overlaps can exceed it
        flat[idx] = np.minimum(flat[idx], 1.0)
    np.subtract(1.0, out[:k].max(axis=0), out=out[k])
    return out


def render_pafs(
    keypoints: np.ndarray, limbs: np.ndarray, map_h: int, map_w: int, stride: int = 8,
    thickness: float = 1.0,
) -> np.ndarray:
    """Keypoints (N, K, 3) and limbs (L, 2) -> float32 (2L, map_h, map_w); channel 2i is x, 2i+1 y."""
    kp = _as_keypoints(keypoints)
    lb = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    n_limbs = lb.shape[0]
    hw = map_h * map_w
    out = np.zeros((2 * n_limbs, map_h, map_w), dtype=np.float32)
    if not n_limbs or not kp.shape[0] or not hw:
        return out
    valid = _valid_points(kp)
    ok = (valid[:, lb[:, 0]] & valid[:, lb[:, 1]]).ravel()  # (N * L,), instance-major
    seg = np.flatnonzero(ok)
    if not seg.size:
        return out
    ends = kp[:, lb, :2].reshape(-1, 4)[seg].T / stride  # (xa, ya, xb, yb) x S, map units
    a, b = ends[:2], ends[2:]
    ba = b - a
    sq = ba * ba
    norm = np.sqrt(sq[0] + sq[1])
    keep = norm >= MIN_LIMB_LENGTH
    if not keep.all():
        seg, a, b, ba, norm = seg[keep], a[:, keep], b[:, keep], ba[:, keep], norm[keep]
        if not seg.size:
            return out
    u = ba / norm  # (2, S) unit vectors
    t = thickness
    ext = np.array([[map_w], [map_h]])
    # box ends: int(max(min - t, 0)) and int(min(max + t, extent)); clipping the lower end to the
    # extent too only avoids overflow (such a box is empty either way), and a negative upper end
    # truncates to a range that is empty just like 0.
    lo = np.minimum(np.maximum(np.minimum(a, b) - t, 0.0), ext).astype(np.int64)
    hi = np.minimum(np.maximum(np.maximum(a, b) + t, 0.0), ext).astype(np.int64)
    span = int((hi - lo).max())
    if span <= 0:
        return out
    cell = lo[:, None, :] + np.arange(span)[:, None]  # (2, span, S)
    # the reference's two products, (x - xa) * uy and (y - ya) * ux, each rounded as it rounds them
    prod = (cell - a[:, None, :]) * u[::-1, None, :]
    prod[cell >= hi[:, None, :]] = np.nan  # outside the box: every comparison with NaN is False
    d = prod[1][:, None, :] - prod[0][None, :, :]  # (span_y, span_x, S), the negated distance
    hit = np.abs(d, out=d) <= t
    np.minimum(cell, ext[:, :, None] - 1, out=cell)
    rows = (seg % n_limbs * (2 * map_h)) + cell[1]
    rows *= map_w
    idx = (rows[:, None, :] + cell[0][None, :, :])[hit]
    who = np.broadcast_to(np.arange(seg.size), hit.shape)[hit]
    if seg[0] // n_limbs != seg[-1] // n_limbs:
        # Later instances overwrite earlier ones. Segment numbers grow with the instance, and one
        # instance never hits a cell twice, so the winner of a cell is its largest segment number.
        # ufunc.at is unbuffered and therefore well defined where a fancy assignment with a
        # repeated index is not.
        best = np.empty(out.size, dtype=who.dtype)
        best[idx] = -1
        np.maximum.at(best, idx, who)
        win = best[idx] == who
        idx, who = idx[win], who[win]
    u32 = u.astype(np.float32)
    flat = out.reshape(-1)
    flat[idx] = u32[0, who]
    flat[idx + hw] = u32[1, who]
    return out


def render_targets(
    keypoints: np.ndarray, skeleton: Skeleton, map_h: int, map_w: int, stride: int = 8,
    sigma: float = 7.0, thickness: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps (K + 1, h, w), pafs (2L, h, w)) for one sample's instances (main first)."""
    kp = _as_keypoints(keypoints)
    if kp.shape[1] != skeleton.num_keypoints:
        raise InputError(
            f"keypoints have {kp.shape[1]} points per instance; skeleton {skeleton.name!r} has "
            f"{skeleton.num_keypoints}"
        )
    heat = render_heatmaps(kp, map_h, map_w, stride, sigma)
    pafs = render_pafs(kp, skeleton.limbs_array, map_h, map_w, stride, thickness)
    return heat, pafs


# ------------------------------------------------------------------------------------ masks
def crowd_mask(segmentations: list, height: int, width: int) -> np.ndarray:
    """uint8 (height, width): 1 everywhere except inside crowd regions (0).

    Each segmentation is a COCO polygon list, an uncompressed RLE ({"counts": [...], "size"})
    or a compressed RLE ({"counts": "..."}), as pycocotools' frPyObjects accepts them.
    """
    mask = np.ones((height, width), dtype=np.uint8)
    if not segmentations:
        return mask
    from pycocotools import mask as mask_utils

    for i, seg in enumerate(segmentations):
        try:
            if isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes)):
                # compressed RLE (frPyObjects only takes uncompressed counts lists)
                counts = seg["counts"]
                rles = {"size": list(seg["size"]),
                        "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
            elif isinstance(seg, list):
                polys = [p for p in seg if len(p) >= 6]  # frPyObjects rejects < 3 points
                if not polys:
                    continue
                rles = mask_utils.frPyObjects(polys, height, width)
            elif isinstance(seg, dict):
                rles = mask_utils.frPyObjects(seg, height, width)
            else:
                raise TypeError(f"got {type(seg).__name__}")
            decoded = mask_utils.decode(rles)
        except Exception as e:  # pycocotools raises bare Exception for unsupported input
            raise InputError(f"crowd segmentation [{i}] is not a COCO polygon or RLE ({e})") from None
        if decoded.ndim == 3:
            decoded = decoded.max(axis=2)
        if decoded.shape != mask.shape:
            raise InputError(
                f"crowd segmentation [{i}] has size {decoded.shape}, image is {(height, width)}"
            )
        mask[decoded > 0] = 0
    return mask


def mask_to_map(mask: np.ndarray, map_h: int, map_w: int) -> np.ndarray:
    """Any-size mask -> float32 (map_h, map_w) with area interpolation (the reference's resize)."""
    import cv2

    m = np.asarray(mask, dtype=np.float32)
    if m.shape == (map_h, map_w):
        return m.copy()
    return cv2.resize(m, (map_w, map_h), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------- flip
def flip_targets(
    heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of the mirrored sample, from the targets of the original.

    Heatmap channel i of the mirror is channel flip[i] mirrored (background stays last).
    PAF limb j of the mirror is its mirror limb i mirrored, with x negated; when limb j lists
    the mirrored ends in the opposite order the vector points the other way, so y is negated
    instead (-(-ux), -uy). A limb whose mirror is not a limb has no source: its channels are zero.
    """
    k = skeleton.num_keypoints
    heat = np.ascontiguousarray(heatmaps[..., ::-1])
    perm = np.concatenate([skeleton.flip_array, [k]])
    heat = heat[perm]
    src = np.ascontiguousarray(pafs[..., ::-1])
    out = np.zeros_like(src)
    for i, (j, rev) in enumerate(skeleton.limb_flip):
        if j < 0:
            continue
        # limb i mirrors onto limb j (the mirror relation is an involution)
        sx, sy = src[2 * i], src[2 * i + 1]
        if rev:
            out[2 * j], out[2 * j + 1] = sx, -sy
        else:
            out[2 * j], out[2 * j + 1] = -sx, sy
    return heat, out
