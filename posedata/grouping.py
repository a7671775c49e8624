"""Peak extraction and part-affinity grouping for any skeleton (pure NumPy, no torch): the decode
half of the channel layout that posedata.targets renders.

This is the reference's current `group_keypoints` (conventions §5), generalised: the limb table,
the order limbs are walked in and the fill-only ("redundant") limbs come from the skeleton
(`grouping_steps`, `redundant`), never from hard-coded ids. Its rules: a limb with no peaks at one
end is skipped (no one-keypoint entries); every candidate pair is sampled at 10 points and scored
by the mean of the PAF projections above 0.05, with no length penalty; a pair is valid when more
than 80% of the points count and its score is > 0; connections are taken greedily in the order of
NumPy's argsort of the scores, reversed, each keypoint once per limb; a tree limb attaches its new
end to the entry holding its known end or starts an entry of two; a redundant limb only fills a
missing end; entries with fewer than 3 keypoints or a mean score below 0.2 are dropped.

Scoring is array code with the reference's float32 arithmetic (so equal scores stay equal and
ties break alike); the greedy matching is a short loop (its result depends on order); the entry
updates of a limb are array operations on an (entries, K) table instead of the reference's loop
over connections x entries, and peak suppression looks only at peaks that have a close neighbour.

Parity for the reference's own 18-point skeleton (templates/openpose18.yaml): the same entries,
counts and scores on every input (tests/test_grouping.py, against a port written from §5). The
reference walks its limbs in a hand-written order, this module in the skeleton's breadth-first
order; both place a limb's known end before the limb, and each keypoint type is the new end of
exactly one tree limb, so the same connections end up in the same entries. Only the entry order
and the order in which an entry's score is summed (float rounding, ~1e-16 relative) follow the
walk; `group(..., order=...)` walks the reference's order and then matches it bit for bit.

Maps are channels-first: heatmaps (K [+ 1 background], H, W), PAFs (2L, H, W) with channels 2i, 2i+1
the x, y components of limb i pointing from limbs[i][0] to limbs[i][1]. Coordinates returned are map
cells (x = column, y = row), so at image resolution they are pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The reference's constants, kept as defaults.
PEAK_THRESHOLD = 0.1
PEAK_MIN_DIST = 6.0
MIN_PAF_SCORE = 0.05
POINTS_PER_LIMB = 10
SUCCESS_RATIO = 0.8
MIN_KEYPOINTS = 3
MIN_MEAN_SCORE = 0.2


def extract_peaks(heatmaps: np.ndarray, threshold: float = PEAK_THRESHOLD, min_dist: float = PEAK_MIN_DIST,
                  num_keypoints: int | None = None) -> list[np.ndarray]:
    """Per keypoint channel, the peaks as an (n, 4) float64 array of x, y, score, global id.

    As the reference: values below `threshold` count as 0; a peak is a cell strictly greater than
    its 4 neighbours (outside the map counts as 0); peaks are ordered by x (ties by y); walking that
    order, a kept peak suppresses every later peak closer than `min_dist`. Global ids number the
    peaks of all channels consecutively in channel order. `heatmaps` is (C, H, W); only the first
    `num_keypoints` channels are used when given (pass K to skip the background channel).
    """
    hm = np.asarray(heatmaps)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps must be (C, H, W), got shape {hm.shape}")
    if num_keypoints is not None:
        hm = hm[:num_keypoints]
    c, h, w = hm.shape
    if threshold > 0:
        ch, ys, xs, scores = _peak_cells(hm, float(threshold))
    else:  # the reference's whole-map formulation; the shortcut below needs threshold > 0
        hm = np.where(hm < threshold, 0, hm)
        padded = np.zeros((c, h + 2, w + 2), dtype=hm.dtype)
        padded[:, 1:-1, 1:-1] = hm
        centre = padded[:, 1:-1, 1:-1]
        is_peak = ((centre > padded[:, 1:-1, :-2]) & (centre > padded[:, 1:-1, 2:])
                   & (centre > padded[:, :-2, 1:-1]) & (centre > padded[:, 2:, 1:-1]))
        ch, ys, xs = np.nonzero(is_peak)
        scores = hm[ch, ys, xs]
    # channel, then x, then y: the reference sorts each channel's row-major peaks by x, stably
    order = np.lexsort((ys, xs, ch))
    ch, ys, xs = ch[order], ys[order], xs[order]
    scores = scores[order].astype(np.float64)
    bounds = np.searchsorted(ch, np.arange(c + 1))
    keep = np.ones(len(ch), dtype=bool)
    r2 = float(min_dist) ** 2
    for k in range(c):
        lo, hi = bounds[k], bounds[k + 1]
        if hi - lo > 1:
            keep[lo:hi] = _suppress(xs[lo:hi], ys[lo:hi], r2, min_dist)
    out = []
    next_id = 0
    for k in range(c):
        lo, hi = bounds[k], bounds[k + 1]
        sel = np.flatnonzero(keep[lo:hi]) + lo
        n = len(sel)
        arr = np.empty((n, 4), dtype=np.float64)
        arr[:, 0] = xs[sel]
        arr[:, 1] = ys[sel]
        arr[:, 2] = scores[sel]
        arr[:, 3] = np.arange(next_id, next_id + n)
        next_id += n
        out.append(arr)
    return out


def _peak_cells(hm: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(channel, y, x, value) of the reference's peaks, touching only cells >= threshold.

    The reference zeroes values below the threshold and then asks for a cell strictly greater than
    its 4 zero-padded neighbours. With threshold > 0 that is: the cell is >= threshold and strictly
    greater than each raw neighbour inside the map (a neighbour below the threshold is below the
    cell anyway). Maps are mostly below the threshold, so this skips most of the full-map work."""
    c, h, w = hm.shape
    flat = np.ascontiguousarray(hm).reshape(-1)
    n = flat.size
    cand = np.flatnonzero(flat >= threshold)
    v = flat[cand]
    # one neighbour at a time, dropping failures as we go: after the two horizontal tests about
    # one cell per row and blob is left, so the vertical tests (and y) cost next to nothing
    x = cand % w
    keep = (x == w - 1) | (v > flat[np.minimum(cand + 1, n - 1)])
    cand, v, x = cand[keep], v[keep], x[keep]
    keep = (x == 0) | (v > flat[np.maximum(cand - 1, 0)])
    cand, v = cand[keep], v[keep]
    y = (cand % (h * w)) // w
    keep = (y == 0) | (v > flat[np.maximum(cand - w, 0)])
    keep &= (y == h - 1) | (v > flat[np.minimum(cand + w, n - 1)])
    cand, v, y = cand[keep], v[keep], y[keep]
    return cand // (h * w), y, cand % w, v


def _suppress(xs: np.ndarray, ys: np.ndarray, r2: float, min_dist: float) -> np.ndarray:
    """Keep-mask of the reference's greedy suppression over peaks sorted by x.

    Conflicting pairs (i < j, closer than min_dist) are found with array operations inside an x
    window; only peaks that have such a conflict need the sequential pass, since a suppressed peak
    suppresses nothing (which makes the result order-dependent)."""
    n = len(xs)
    xf = xs.astype(np.float64)
    yf = ys.astype(np.float64)
    hi = np.searchsorted(xf, xf + min_dist, side="left")  # |dx| < min_dist is necessary
    counts = hi - np.arange(1, n + 1)
    counts = np.maximum(counts, 0)
    total = int(counts.sum())
    keep = np.ones(n, dtype=bool)
    if total == 0:
        return keep
    ii = np.repeat(np.arange(n), counts)
    starts = np.cumsum(counts) - counts
    jj = ii + 1 + (np.arange(total) - np.repeat(starts, counts))
    close = (xf[ii] - xf[jj]) ** 2 + (yf[ii] - yf[jj]) ** 2 < r2
    ii, jj = ii[close], jj[close]
    if len(ii) == 0:
        return keep
    bounds = np.searchsorted(ii, np.arange(n + 1))
    for i in np.unique(ii):
        if keep[i]:
            keep[jj[bounds[i]:bounds[i + 1]]] = False
    return keep


@dataclass(frozen=True)
class GroupingParams:
    """The reference's grouping constants (conventions §5)."""

    threshold: float = PEAK_THRESHOLD
    min_dist: float = PEAK_MIN_DIST
    min_paf_score: float = MIN_PAF_SCORE
    points_per_limb: int = POINTS_PER_LIMB
    success_ratio: float = SUCCESS_RATIO
    min_keypoints: int = MIN_KEYPOINTS
    min_mean_score: float = MIN_MEAN_SCORE

    def __post_init__(self) -> None:
        if self.points_per_limb < 2:
            raise ValueError(f"points_per_limb must be >= 2, got {self.points_per_limb}")


def score_candidates(pts_a: np.ndarray, pts_b: np.ndarray, paf_x: np.ndarray, paf_y: np.ndarray,
                     params: GroupingParams = GroupingParams()) -> tuple[np.ndarray, np.ndarray]:
    """Score every candidate pair (a, b) of one limb, candidates listed b-major, a-minor.

    pts_a (n, >=2), pts_b (m, >=2) hold integer cell positions; paf_x, paf_y (H, W) the limb's
    field, pointing from a to b. Returns (score (m * n,) float64, valid (m * n,) bool); candidate
    j * n + i is (pts_a[i], pts_b[j]). Each pair is sampled at `points_per_limb` points
    a + t (b - a) / (points - 1), rounded half-to-even to cells; a point counts when
    dot(PAF, (b - a) / (|b - a| + 1e-6)) > min_paf_score; score = sum over counted points /
    (count + 1e-6) (no length penalty); valid = more than `success_ratio` of the points count and
    score > 0 (so a zero-length pair is never valid).

    The arithmetic is the reference's to the bit: positions and directions in float32, the field
    in its own dtype, the 10 point scores summed by one NumPy reduction over a (pairs, points)
    array; so equal scores stay equal and its tie-breaks (NumPy argsort of these float64 scores)
    are reproduced exactly.
    """
    n, m = len(pts_a), len(pts_b)
    k = params.points_per_limb
    h, w = paf_x.shape
    a = np.asarray(pts_a)[:, :2].astype(np.float32)
    b = np.asarray(pts_b)[:, :2].astype(np.float32)
    a_rep = np.broadcast_to(a[None], (m, n, 2)).reshape(-1, 2)
    vec = (b[:, None, :] - a[None, :, :]).reshape(-1, 2)
    vx, vy = vec[:, 0:1], vec[:, 1:2]
    grid = np.arange(k, dtype=np.float32)[None, :]
    step = 1 / (k - 1)
    # a + grid * step * vec, in float32 and in that order of operations
    px = np.rint(step * vx * grid + a_rep[:, 0:1]).astype(np.intp)
    py = np.rint(step * vy * grid + a_rep[:, 1:2]).astype(np.intp)
    idx = py * w + px
    fx = paf_x.reshape(-1)[idx]
    fy = paf_y.reshape(-1)[idx]
    norm = np.sqrt(vx * vx + vy * vy) + 1e-6
    s = fx * (vx / norm) + fy * (vy / norm)  # (m * n, k)
    ok = s > params.min_paf_score
    counted = ok.sum(1)
    score = (s * ok).sum(1) / (counted + 1e-6)
    valid = (score > 0) & (counted / k > params.success_ratio)
    return score, valid


def match_greedy(a_idx: np.ndarray, b_idx: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one connections from valid candidates (in b-major, a-minor order): taken by
    descending score in the order of NumPy's default argsort of `score`, reversed (the reference's
    call, so ties break as in the reference), each a and each b used once. Returns (a, b, score)
    in the order taken."""
    order = np.argsort(score)[::-1]
    cap = min(len(np.unique(a_idx)), len(np.unique(b_idx))) if len(order) > 1 else len(order)
    sel: list[int] = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    ai, bi = a_idx.tolist(), b_idx.tolist()
    for o in order.tolist():
        i, j = ai[o], bi[o]
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            sel.append(o)
            if len(sel) == cap:
                break
    sel_arr = np.asarray(sel, dtype=np.intp)
    return a_idx[sel_arr], b_idx[sel_arr], score[sel_arr]


class _Entries:
    """Growable table of pose entries: global peak id per keypoint (-1 missing), count, score."""

    def __init__(self, k: int, capacity: int = 16):
        self.ids = np.full((capacity, k), -1, dtype=np.int64)
        self.count = np.zeros(capacity, dtype=np.int64)
        self.score = np.zeros(capacity, dtype=np.float64)
        self.n = 0

    def add(self, count: int, score: np.ndarray, cols: tuple[int, ...], new_ids: np.ndarray) -> None:
        """Append len(score) entries with new_ids[:, c] in column cols[c]."""
        m = len(score)
        if m == 0:
            return
        need = self.n + m
        if need > len(self.count):
            cap = max(need, 2 * len(self.count))
            grow = cap - len(self.count)
            self.ids = np.vstack([self.ids, np.full((grow, self.ids.shape[1]), -1, dtype=np.int64)])
            self.count = np.concatenate([self.count, np.zeros(grow, dtype=np.int64)])
            self.score = np.concatenate([self.score, np.zeros(grow)])
        sl = slice(self.n, need)
        for c, col in enumerate(cols):
            self.ids[sl, col] = new_ids[:, c]
        self.count[sl] = count
        self.score[sl] = score
        self.n = need


_PLANS: dict = {}


def _plan(skeleton) -> tuple[tuple[tuple[int, int, int], ...], tuple[bool, ...]]:
    """(grouping_steps, redundant) of a skeleton, computed once per limb table and root (the
    skeleton derives them by a graph walk on every access)."""
    key = (skeleton.num_keypoints, skeleton.limbs, skeleton.root, skeleton.forced_redundant)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = (skeleton.grouping_steps, skeleton.redundant)
    return plan


def group(heatmaps: np.ndarray, pafs: np.ndarray, skeleton, params: GroupingParams | None = None,
          peaks: list[np.ndarray] | None = None, return_counts: bool = False,
          order: Sequence[tuple[int, int, int]] | None = None, **overrides
          ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assemble instances from heatmaps (K or K+1, H, W) and PAFs (2L, H, W).

    Returns poses (P, K, 3) with x, y, peak score per keypoint (all -1 where missing) and the
    entries' total scores (P,): the sum of the member peaks' scores and of the accepted
    connections' scores. With return_counts, also (P,) the entry's keypoint count as the reference
    keeps it (keypoints filled in by redundant limbs are not counted). Entries come in the order
    they were created. `overrides` set GroupingParams fields (e.g. threshold=0.2); `peaks` skips
    peak extraction; `order` replaces the skeleton's walk, (limb, known end, new end) per step
    (tree limbs parent first, redundant limbs last), e.g. the reference's hand-written order.
    """
    params = params or GroupingParams()
    steps, redundant = _plan(skeleton)
    if order is not None:
        steps = tuple(order)
    if overrides:
        params = GroupingParams(**{**params.__dict__, **overrides})
    k = skeleton.num_keypoints
    hm = np.asarray(heatmaps)
    pf = np.asarray(pafs)
    if hm.ndim != 3 or hm.shape[0] not in (k, k + 1):
        raise ValueError(f"heatmaps must be ({k} or {k + 1}, H, W) for skeleton {skeleton.name!r}, got {hm.shape}")
    if pf.ndim != 3 or pf.shape[0] != 2 * skeleton.num_limbs or pf.shape[1:] != hm.shape[1:]:
        raise ValueError(f"pafs must be ({2 * skeleton.num_limbs}, {hm.shape[1]}, {hm.shape[2]}), got {pf.shape}")
    if peaks is None:
        peaks = extract_peaks(hm, params.threshold, params.min_dist, num_keypoints=k)
    all_scores = np.concatenate([p[:, 2] for p in peaks]) if peaks else np.zeros(0)
    all_pts = np.concatenate([p for p in peaks]) if peaks else np.zeros((0, 4))
    entries = _Entries(k)
    for li, known, new in steps:
        a, b = skeleton.limbs[li]
        pa, pb = peaks[a], peaks[b]
        n = len(pa)
        if n == 0 or len(pb) == 0:  # no one-keypoint entries: the limb is skipped
            continue
        score, valid = score_candidates(pa, pb, pf[2 * li], pf[2 * li + 1], params)
        cand = np.flatnonzero(valid)
        if len(cand) == 0:
            continue
        i, j, s = match_greedy(cand % n, cand // n, score[cand])
        ga, gb = pa[i, 3].astype(np.int64), pb[j, 3].astype(np.int64)
        if redundant[li]:
            _fill(entries, a, b, ga, gb)
            continue
        gk, gn = (ga, gb) if known == a else (gb, ga)
        col = entries.ids[:entries.n, known]
        hit = col[:, None] == gk[None, :]
        rows, cs = np.nonzero(hit)
        entries.ids[rows, new] = gn[cs]
        entries.count[rows] += 1
        entries.score[rows] += all_scores[gn[cs]] + s[cs]
        lone = ~hit.any(axis=0)
        entries.add(2, all_scores[gk[lone]] + all_scores[gn[lone]] + s[lone], (known, new),
                    np.stack([gk[lone], gn[lone]], axis=1))
    n = entries.n
    ids, count, total = entries.ids[:n], entries.count[:n], entries.score[:n]
    keep = (count >= params.min_keypoints) & ~(total / np.maximum(count, 1) < params.min_mean_score)
    ids, count, total = ids[keep], count[keep], total[keep]
    poses = np.full((len(ids), k, 3), -1.0)
    have = ids >= 0
    poses[have] = all_pts[ids[have], :3]
    if return_counts:
        return poses, total, count
    return poses, total


def _fill(entries: _Entries, a: int, b: int, ga: np.ndarray, gb: np.ndarray) -> None:
    """A redundant limb only fills a missing end of an entry that holds the other end; neither the
    count nor the score changes (as the reference). An entry can match on one side only, and ids
    within a limb's connections are unique, so all fills are independent."""
    ids = entries.ids[:entries.n]
    col_a, col_b = ids[:, a].copy(), ids[:, b].copy()
    m1 = (col_a[:, None] == ga[None, :]) & (col_b[:, None] == -1)
    rows, cs = np.nonzero(m1)
    ids[rows, b] = gb[cs]
    m2 = (col_b[:, None] == gb[None, :]) & (col_a[:, None] == -1)
    rows, cs = np.nonzero(m2)
    ids[rows, a] = ga[cs]


# ------------------------------------------------------------------ the reference's notation
def reference_tables(skeleton) -> dict:
    """The tables a user keeping the reference's code must paste in, derived from the skeleton.

    BODY_PARTS_KPT_IDS lists limbs in grouping order as [known end, new end] (its group_keypoints
    attaches the second id to entries holding the first), fill-only limbs last; BODY_PARTS_PAF_IDS
    gives each entry's PAF channels [x, y]; right/left are its Flip._swap_left_right lists;
    to_coco_map is convert_to_coco_format's map (-1 for derived keypoints). The reference scores a
    pair along second - first, so a tree limb walked against its PAF direction cannot be expressed
    there: such limbs are reported in `warnings` (list them [parent, child] in the skeleton file).
    """
    kpt_ids, paf_ids, warnings = [], [], []
    for li, known, new in skeleton.grouping_steps:
        a, b = skeleton.limbs[li]
        kpt_ids.append([known, new])
        paf_ids.append([2 * li, 2 * li + 1])
        if (known, new) != (a, b):
            warnings.append(f"limb {skeleton.keypoints[a]}-{skeleton.keypoints[b]} (PAF {2 * li}, {2 * li + 1}) is "
                            f"walked from {skeleton.keypoints[known]!r}, against its PAF direction; the reference's "
                            f"group_keypoints would score it negatively. List it as "
                            f"[{skeleton.keypoints[known]}, {skeleton.keypoints[new]}] in the skeleton file and retrain.")
    fill_only = [n for n, (li, _k, _n) in enumerate(skeleton.grouping_steps) if skeleton.redundant[li]]
    right, left = [], []
    for i, j in enumerate(skeleton.flip):
        if i < j:
            r, l_ = (j, i) if skeleton.side(i) == "left" else (i, j)
            right.append(r)
            left.append(l_)
    try:
        to_coco = skeleton.source_index(list(skeleton.coco_keypoints)).tolist()
    except Exception:  # noqa: BLE001 - a skeleton whose source list lacks names has no COCO map
        to_coco = None
    return {
        "BODY_PARTS_KPT_IDS": kpt_ids,
        "BODY_PARTS_PAF_IDS": paf_ids,
        "fill_only_part_ids": fill_only,
        "right": right,
        "left": left,
        "num_heatmaps": skeleton.num_heatmaps,
        "num_pafs": skeleton.num_pafs,
        "num_keypoints": skeleton.num_keypoints,
        "pose_entry_size": skeleton.num_keypoints + 2,
        "to_coco_map": to_coco,
        "derived": list(skeleton.derived_indices),
        "warnings": warnings,
    }


def reference_text(skeleton) -> str:
    """reference_tables() as Python the reference's files accept, with where each line goes."""
    t = reference_tables(skeleton)

    def rows(pairs: list, per_line: int = 10, indent: int = 22) -> str:
        chunks = [", ".join(f"[{a}, {b}]" for a, b in pairs[i:i + per_line]) for i in range(0, len(pairs), per_line)]
        return (",\n" + " " * indent).join(chunks)

    fill = t["fill_only_part_ids"]
    lines = [
        f"# skeleton {skeleton.name} ({skeleton.num_keypoints} keypoints, {skeleton.num_limbs} limbs), "
        f"fingerprint {skeleton.fingerprint}",
        "# keypoint ids: " + ", ".join(f"{i} {k}" for i, k in enumerate(skeleton.keypoints)),
        "",
        "# modules/keypoints.py: limbs in grouping order, [known end, new end]; fill-only limbs last",
        f"BODY_PARTS_KPT_IDS = [{rows(t['BODY_PARTS_KPT_IDS'])}]",
        "# PAF channels [x, y] of each limb above (the training order is limb i -> 2i, 2i + 1)",
        f"BODY_PARTS_PAF_IDS = ({rows(t['BODY_PARTS_PAF_IDS'])})",
        "# group_keypoints: the fill-only (redundant) part ids, replacing `part_id == 17 or part_id == 18`",
        f"#   elif part_id in {tuple(fill)}:" if fill else "#   (none: delete that branch)",
        f"#   pose_entry_size={t['pose_entry_size']}",
        "",
        "# datasets/transformations.py, Flip._swap_left_right",
        f"right = {t['right']}",
        f"left = {t['left']}",
        "",
        "# models/with_mobilenet.py, train.py and val.py",
        f"num_heatmaps = {t['num_heatmaps']}",
        f"num_pafs = {t['num_pafs']}",
        f"# val.py: `for kpt_idx in range({skeleton.num_keypoints})`, and in convert_to_coco_format",
    ]
    if t["to_coco_map"] is not None:
        n_coco = len(skeleton.coco_keypoints)
        lines.append(f"#   keypoints = [0] * {n_coco} * 3")
        lines.append(f"to_coco_map = {t['to_coco_map']}  # -1: not in the COCO file (skip it)")
        if t["derived"]:
            lines.append(f"#   skip position_id in {t['derived']} (derived), and score * max(0, count - {len(t['derived'])})")
    lines.append(f"# modules/pose.py (Pose.draw): range(len(BODY_PARTS_PAF_IDS) - {len(fill)})")
    for w in t["warnings"]:
        lines.append(f"# WARNING: {w}")
    return "\n".join(lines)
