"""convert's sample rules: which person instances become training samples (the reference's
num_keypoints, area and de-duplication rules, vectorised where the rules allow)."""
from __future__ import annotations

from collections import Counter

import numpy as np

# rules that keep a person from being a training sample (it stays an instance)
REJECT_MIN_KEYPOINTS = "min_keypoints"
REJECT_MIN_AREA = "min_area"
REJECT_DEDUP = "dedup"
# the option of `posedata convert` that changes each rule
RULE_OPTIONS = {REJECT_MIN_KEYPOINTS: "--min-keypoints", REJECT_MIN_AREA: "--min-area", REJECT_DEDUP: "--dedup"}


def select_samples(image_rank: np.ndarray, num_keypoints: np.ndarray, area: np.ndarray, bbox: np.ndarray,
                   min_keypoints: int = 5, min_area: float = 32 * 32, dedup_ratio: float = 0.3
                   ) -> tuple[np.ndarray, Counter]:
    """Indices of the main persons, in instance order, and counts of rejections by rule.

    Instances must be grouped by image (image_rank non-decreasing) and in file order within an
    image. The threshold rules are vectorised. De-duplication depends on what was accepted
    before, so it is sequential by nature; but a candidate with no earlier candidate of its image
    anywhere near is accepted whatever happened before, so all pairs of candidates within an
    image are screened at once and only candidates near an earlier one are decided one by one,
    in Python floats with the reference's own arithmetic, so ties break identically."""
    rejected: Counter = Counter()
    few = num_keypoints < min_keypoints
    small = ~few & (area < min_area)
    rejected[REJECT_MIN_KEYPOINTS] = int(few.sum())
    rejected[REJECT_MIN_AREA] = int(small.sum())
    cand = np.flatnonzero(~few & ~small)
    n = len(cand)
    keep = np.ones(n, dtype=bool)
    if n:
        ranks = image_rank[cand]
        starts = np.flatnonzero(np.r_[True, ranks[1:] != ranks[:-1]])
        sizes = np.diff(np.r_[starts, n])
        b = bbox[cand].astype(np.float64)
        # an image with hundreds of candidates would make its pairs quadratic (1,546 candidates in
        # one image of the benchmark's COCO-train-sized file were 1.2M of its 1.4M pairs, 3,627 in
        # the 2x file 6.6M): those are decided against the accepted ones only, as the reference does
        crowded = sizes > _CROWDED
        for s, size in zip(starts[crowded].tolist(), sizes[crowded].tolist()):
            _dedup_crowded(b, s, size, dedup_ratio, keep)
        if crowded.any():
            starts, sizes = starts[~crowded], sizes[~crowded]
            rows = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()))
            b, starts, part = b[rows], np.cumsum(sizes) - sizes, np.ones(len(rows), dtype=bool)
        else:
            rows, part = None, keep
        if int((sizes * (sizes - 1) // 2).sum()) <= _MAX_PAIRS:
            _dedup_screened(b, starts, sizes, dedup_ratio, part)
        else:  # pairs would not fit: walk every image
            _dedup_loop(b.tolist(), starts, sizes, dedup_ratio, part)
        if rows is not None:
            keep[rows] = part
    rejected[REJECT_DEDUP] = int((~keep).sum())
    return cand[keep].astype(np.int64), rejected


_MAX_PAIRS = 20_000_000
_CROWDED = 64  # candidates in one image beyond which its pairs are not enumerated


def _close(bi: list[float], bj: list[float], ratio: float) -> bool:
    """The reference's test, in its arithmetic: is j's centre within ratio * i's width of i's?"""
    pix, piy = bi[0] + bi[2] / 2, bi[1] + bi[3] / 2
    cx, cy = bj[0] + bj[2] / 2, bj[1] + bj[3] / 2
    return ((cx - pix) ** 2 + (cy - piy) ** 2) ** 0.5 < bi[2] * ratio


def _dedup_loop(b: list[list[float]], starts: np.ndarray, sizes: np.ndarray, ratio: float, keep: np.ndarray) -> None:
    for s, size in zip(starts.tolist(), sizes.tolist()):
        accepted: list[int] = []
        for j in range(s, s + size):
            if any(_close(b[i], b[j], ratio) for i in accepted):
                keep[j] = False
            else:
                accepted.append(j)


def _dedup_screened(b: np.ndarray, starts: np.ndarray, sizes: np.ndarray, ratio: float, keep: np.ndarray) -> None:
    n = len(b)
    group = np.repeat(np.arange(len(starts)), sizes)
    earlier = np.arange(n) - starts[group]  # candidates before j in its image
    j = np.repeat(np.arange(n), earlier)
    if len(j) == 0:
        return
    first_pair = np.cumsum(earlier) - earlier
    i = starts[group[j]] + np.arange(len(j)) - first_pair[j]
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    d = np.hypot(cx[j] - cx[i], cy[j] - cy[i])
    # a superset of the close pairs: rounding differences from the reference's arithmetic are
    # far below this margin, and every pair kept is decided by the exact test below
    maybe = d < np.abs(b[i, 2] * ratio) * (1 + 1e-9) + 1e-9
    pi, pj = i[maybe].tolist(), j[maybe].tolist()
    if not pj:
        return
    rows = b.tolist()
    # pairs come ordered by j, so every earlier candidate's fate is settled when j is decided
    for ii, jj in zip(pi, pj):
        if keep[jj] and keep[ii] and _close(rows[ii], rows[jj], ratio):
            keep[jj] = False


def _dedup_crowded(b: np.ndarray, s: int, size: int, ratio: float, keep: np.ndarray) -> None:
    """One image's candidates b[s:s+size], each tested against the ones accepted before it (the
    reference's loop), the distances to all of them at once; only those within the screen's
    margin are decided by the reference's own arithmetic (_close)."""
    rows = b[s:s + size]
    cx, cy = rows[:, 0] + rows[:, 2] / 2, rows[:, 1] + rows[:, 3] / 2
    lim = np.abs(rows[:, 2] * ratio) * (1 + 1e-9) + 1e-9  # the margin _dedup_screened uses
    acc = np.empty(size, dtype=np.int64)  # accepted rows, and their centres and limits
    acx, acy, alim = np.empty(size), np.empty(size), np.empty(size)
    na = 0
    exact = rows.tolist()
    for j in range(size):
        if na:
            near = np.flatnonzero(np.hypot(acx[:na] - cx[j], acy[:na] - cy[j]) < alim[:na])
            if len(near) and any(_close(exact[i], exact[j], ratio) for i in acc[near].tolist()):
                keep[s + j] = False
                continue
        acc[na], acx[na], acy[na], alim[na] = j, cx[j], cy[j], lim[j]
        na += 1
