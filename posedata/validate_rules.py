"""The rules every validate check shares: the reference's training-sample thresholds (the ones
convert applies), the readers of raw JSON values (numbers, ids, short safe descriptions) and a
keypoint category being checked. Nothing here reports; posedata/validate.py does."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .skeleton import Skeleton

# The reference's training-sample filters (lwop-conventions §1), the rules convert applies; the
# minimum of labelled keypoints scales with the skeleton (5 for the reference's people).
MIN_AREA = 32 * 32
REFERENCE_MIN_KEYPOINTS = 5  # the reference's rule, for its 17/18-keypoint people


def default_min_keypoints(skeleton: Skeleton) -> int:
    """The default minimum of labelled keypoints for a training sample: the reference's 5 of
    COCO's 17 as a share of the skeleton, rounded up, never above 5 (coco17 and openpose18 keep
    the reference's 5; a 4-keypoint mouse needs 2, not an impossible 5)."""
    k = skeleton.num_keypoints - len(skeleton.derived)
    return max(1, min(REFERENCE_MIN_KEYPOINTS, -(-REFERENCE_MIN_KEYPOINTS * k // 17)))


# A labelled point this far beyond its bbox, as a fraction of the box's larger side, is "far".
FAR_OUTSIDE_BBOX = 0.5
# A bbox may overhang the image by this many pixels before it is reported (rounding in exports).
BBOX_SLACK = 1.0

_NUM = (int, float)


def _is_num(v: Any) -> bool:
    return isinstance(v, _NUM) and not isinstance(v, bool)


# The label file stores coordinates, boxes and areas as float32: a larger magnitude would become
# inf there (and ids are int64), so validate treats such numbers as non-finite.
F32_MAX = 3.4028234663852886e38
I64 = 2**63


def _finite(v: Any) -> float | None:
    """v as a finite float, or None (non-number, bool, NaN, inf, or beyond float32 range)."""
    t = type(v)
    if t is float:  # the common cases first: this runs a million times on COCO-sized files
        return v if -F32_MAX <= v <= F32_MAX else None
    if t is int:
        return float(v) if -F32_MAX <= v <= F32_MAX else None
    if not _is_num(v):
        return None
    try:
        f = float(v)
    except (OverflowError, ValueError):
        return None
    return f if -F32_MAX <= f <= F32_MAX else None


def _as_id(v: Any) -> int | None:
    """An id as int: ints and integer-valued floats (as coco.from_coco accepts) in int64 range
    (the label file's), else None."""
    if type(v) is int:
        return v if -I64 <= v < I64 else None
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return int(v) if -I64 <= v < I64 else None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and -I64 <= v < I64:
        return int(v)
    return None


def _short(v: Any, limit: int = 60) -> str:
    """A safe, short description of any JSON value (no deep repr, no huge int to str)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int):
        return repr(v) if v.bit_length() <= 128 else f"an integer of {v.bit_length()} bits"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        r = repr(v)
        return r if len(r) <= limit else r[: limit - 4] + "...'"
    if isinstance(v, dict):
        return f"an object with {len(v)} key(s)"
    if isinstance(v, list):
        if len(v) <= 8 and not any(isinstance(x, (list, dict)) for x in v):
            return "[" + ", ".join(_short(x, 20) for x in v) + "]"
        return f"a list of {len(v)} item(s)"
    return type(v).__name__


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _names(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


class _Cat:
    """A keypoint category being checked."""

    def __init__(self, index: int, cid: int, names: list[str]) -> None:
        self.index = index
        self.id = cid
        self.names = names
        self.k = len(names)
        self.src: np.ndarray | None = None  # skeleton keypoint -> dataset index (-1 derived); None: no match
        self.rows: list[int] = []  # annotation indices with well-formed keypoint arrays
        self.kps: list[list] = []
        self.screened: np.ndarray | None = None  # rows the column screen found well-formed (to merge with rows)


def _usable_segmentation(seg: Any) -> bool:
    if isinstance(seg, dict):
        size = seg.get("size")
        return ("counts" in seg and isinstance(size, list) and len(size) == 2
                and all(_as_id(s) is not None and s > 0 for s in size))
    if isinstance(seg, list) and seg:
        return all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(_finite(t) is not None for t in p)
                   for p in seg)
    return False


# Rows per block of validate's and convert's (N, K) float64 arithmetic. glibc's malloc reuses freed
# blocks of up to 32 MB and gives larger ones fresh pages from the kernel (mapped and zeroed on
# first touch, returned on free): a 300k-annotation file's (N, 17) float64 terms are 41 MB each,
# so every one was kernel page work that a 150k file's (20 MB) was not, and the time grew faster
# than the file. Blocks of 16k rows (2.2 MB a term) stay in malloc's heap and in cache.
BLOCK_ROWS = 1 << 14


def blocks(n: int) -> list[slice]:
    """Row slices of at most BLOCK_ROWS rows covering range(n)."""
    return [slice(s, s + BLOCK_ROWS) for s in range(0, n, BLOCK_ROWS)]
