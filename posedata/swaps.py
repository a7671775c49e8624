"""Left/right labels swapped by the annotator: which instances look swapped, and whether there are
more of them than annotation noise explains (F005).

validate's V070 rule (a flip pair whose sign of x_left - x_right disagrees with a clear majority of
the instance's pairs) is a warning because bodies legitimately cross: on simulated people with arms
and legs swinging, 22% of correct instances break it, mostly wrists and ankles. Counting V070 hits
therefore refused correct data. A swap is suspected here only when the geometry says more than
"this pair crossed":
- the pair sits next to the midline (a limb joins it to its partner or to a keypoint the flip map
  keeps in place: eyes beside the nose, shoulders, hips): such pairs do not cross except in side
  views, which V070's level-in-x tolerance already ignores; or
- exchanging the labels of the disagreeing pairs makes the limbs that join them to the rest of the
  body markedly shorter (by SHORTER): a wrist labelled on the wrong side hangs from the far elbow.
On the simulated people this flags 2-3% of correct instances (bench/bench_swaps.py), so the noise
allowance SWAP_NOISE is 5%: F005 when the count is beyond Binomial(checked, SWAP_NOISE) at ALPHA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .coco import Dataset
from .sides import minority_pairs
from .skeleton import Skeleton

ALPHA = 0.001  # the flip verdict's level: F001's family-wise false-FAIL rate with a right map, and F005's
SWAP_NOISE = 0.05  # share of instances with a suspected swap that annotation noise and natural poses explain
SHORTER = 0.6  # the swapped labelling's joining limbs, as a share of today's, below which a swap is suspected
MAX_SUSPECTS = 20  # suspected instances listed in a finding


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def binom_upper(k, n, p: float = 0.5) -> np.ndarray:
    """P(X >= k) for X ~ Binomial(n, p), elementwise and exact (sums of log-space terms); 1 where k <= 0."""
    k, n = np.broadcast_arrays(np.atleast_1d(np.asarray(k, np.int64)), np.atleast_1d(np.asarray(n, np.int64)))
    out = np.ones(k.shape)
    if not k.size:
        return out
    lf = _log_factorials(int(max(n.max(), 0)))
    lp, lq = (math.log(p), math.log1p(-p)) if 0 < p < 1 else (0.0, 0.0)
    for idx in np.ndindex(k.shape):
        kk, nn = int(k[idx]), int(n[idx])
        if kk <= 0:
            continue
        if kk > nn or p <= 0:
            out[idx] = 0.0
        elif p >= 1:
            out[idx] = 1.0
        else:
            j = np.arange(kk, nn + 1)
            out[idx] = min(1.0, float(np.exp(lf[nn] - lf[j] - lf[nn - j] + j * lp + (nn - j) * lq).sum()))
    return out


def _pairs(sk: Skeleton) -> np.ndarray:
    """(P, 2) keypoint columns of sk.flip_pairs(), which lists each pair left member first."""
    return np.array([(sk.index(a), sk.index(b)) for a, b in sk.flip_pairs()], dtype=np.int64).reshape(-1, 2)


def midline_pairs(sk: Skeleton) -> np.ndarray:
    """(P,) bool: the pair is joined by a limb to its partner or to a keypoint the flip map keeps in
    place (derived keypoints count: openpose18's neck sits between the shoulders)."""
    flip = sk.flip_array
    still = flip == np.arange(len(flip))
    out = []
    for a, b in _pairs(sk):
        near = False
        for u, v in sk.limbs:
            for x, y in ((u, v), (v, u)):
                if x in (a, b) and (y in (a, b) or still[y]):
                    near = True
        out.append(near)
    return np.array(out, dtype=bool)


def suspected_swaps(pts: np.ndarray, lab: np.ndarray, sk: Skeleton) -> np.ndarray:
    """(N, P) bool over sk.flip_pairs(): the pairs of each instance that look swapped (module doc).

    pts (N, K, 2) and lab (N, K) in skeleton order. A row is all False unless V070's rule finds
    disagreeing pairs and either one of them is a midline pair or exchanging all of them shortens
    the limbs that join them to the rest of the instance below SHORTER of today's length."""
    pairs = _pairs(sk)
    n, k = lab.shape
    if not len(pairs) or not n:
        return np.zeros((n, len(pairs)), dtype=bool)
    left, right = pairs.T
    minority = minority_pairs(pts[..., 0], lab, left, right)[0]
    near = (minority & midline_pairs(sk)[None]).any(1)
    g = np.tile(np.arange(k), (n, 1))  # per instance: the labelling with its disagreeing pairs exchanged
    for j, (a, b) in enumerate(pairs):
        g[minority[:, j], a], g[minority[:, j], b] = b, a
    moved = g != np.arange(k)
    rows = np.arange(n)
    today = np.zeros(n)
    exchanged = np.zeros(n)
    for u, v in sk.limbs:
        for x, y in ((u, v), (v, u)):
            joins = moved[:, x] & ~moved[:, y] & lab[:, x] & lab[:, y] & lab[rows, g[:, x]]
            today += np.where(joins, np.linalg.norm(pts[:, x] - pts[:, y], axis=1), 0.0)
            exchanged += np.where(joins, np.linalg.norm(pts[rows, g[:, x]] - pts[:, y], axis=1), 0.0)
    shorter = (today > 0) & (exchanged < SHORTER * today)
    return minority & (near | shorter)[:, None]


@dataclass
class SwapCheck:
    """Instances that look swapped (suspected_swaps), and whether they are more than annotation
    noise and natural poses explain."""

    checked: int  # instances with 3+ flip pairs labelled (where a majority can show a swap)
    suspects: list[dict]  # {"annotation_id", "image_id", "file_name", "pairs"}
    p_value: float  # P(this many or more | Binomial(checked, SWAP_NOISE))
    noise: float = SWAP_NOISE

    @property
    def common(self) -> bool:
        return self.p_value <= ALPHA


def swap_counts(pts: np.ndarray, lab: np.ndarray, sk: Skeleton) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """swap_check's arithmetic: (N, P) suspected pairs, (N,) checked (3+ pairs labelled), (N,)
    suspected instances among them, and the binomial p of their count against SWAP_NOISE."""
    sw = suspected_swaps(pts, lab, sk)
    pairs = _pairs(sk)
    both = lab[:, pairs[:, 0]] & lab[:, pairs[:, 1]] if len(pairs) else np.zeros((len(pts), 0), bool)
    checked = both.sum(1) >= 3
    hit = sw.any(1) & checked
    return sw, checked, hit, float(binom_upper(int(hit.sum()), int(checked.sum()), SWAP_NOISE)[0])


def swap_check(ds: Dataset, sk: Skeleton, pts: np.ndarray, lab: np.ndarray, anns: list) -> SwapCheck | None:
    """Suspected swaps against annotation noise: one-sided exact binomial test of their count
    against SWAP_NOISE of the instances where a swap can show. None when the skeleton has fewer
    than 3 flip pairs (the rule needs a majority of pairs)."""
    pairs = sk.flip_pairs()
    if len(pairs) < 3:
        return None
    sw, checked, hit, p = swap_counts(pts, lab, sk)
    names = [f"{a}/{b}" for a, b in pairs]
    images = ds.image_index()
    suspects = []
    for n in np.flatnonzero(hit):
        a = anns[n]
        im = images.get(a.image_id)
        suspects.append({"annotation_id": a.id, "image_id": a.image_id,
                         "file_name": im.file_name if im is not None else None,
                         "pairs": [names[j] for j in np.flatnonzero(sw[n])]})
    return SwapCheck(int(checked.sum()), suspects, p)
