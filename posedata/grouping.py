"""Part-affinity grouping for any skeleton (pure NumPy, no torch): the decode half of the channel
layout that posedata.targets renders. Its peaks come from posedata.peaks (extract_peaks is
re-exported here).

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
ties break alike); the greedy matching is a short loop (its result depends on order); a connection
finds the entries holding its known end through a per-peak index instead of the reference's loop
over connections x entries.

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

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# extract_peaks is re-exported: callers import it from here with group
from posedata.peaks import PEAK_MIN_DIST, PEAK_THRESHOLD, all_peaks, extract_peaks  # noqa: F401

# The reference's constants, kept as defaults (the peak search's live in posedata.peaks).
MIN_PAF_SCORE = 0.05
POINTS_PER_LIMB = 10
SUCCESS_RATIO = 0.8
MIN_KEYPOINTS = 3
MIN_MEAN_SCORE = 0.2


class PafReader:
    """PAFs (2L, H, W) that grouping reads but nobody stores: reader[i] gives the values of the
    maps' flat (C-order) indices i, as pafs.reshape(-1)[i] would. Grouping reads the PAFs only at
    10 points per candidate pair, so the trainer (trainer.predict.detect) upsamples the network's
    PAFs at those points instead of at every pixel; `group` takes a reader wherever it takes PAFs."""

    shape: tuple[int, int, int]

    def __getitem__(self, flat_index: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _ArrayPafs(PafReader):
    """A PAF array as a reader (group reads every PAF through one): np.take with mode="clip"
    skips the bounds checks, as grouping's indices lie inside the maps by construction."""

    def __init__(self, pafs: np.ndarray) -> None:
        self.shape = pafs.shape
        self._flat = np.ascontiguousarray(pafs).reshape(-1)

    def __getitem__(self, flat_index: np.ndarray) -> np.ndarray:
        return self._flat.take(flat_index, mode="clip")


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


_PLANS: dict = {}
_DEFAULT_PARAMS = GroupingParams()


def _plan(skeleton) -> tuple[tuple[tuple[int, int, int], ...], tuple[bool, ...]]:
    """(grouping_steps, redundant) of a skeleton, computed once per limb table and root (the
    skeleton derives them by a graph walk on every access)."""
    key = (skeleton.num_keypoints, skeleton.limbs, skeleton.root, skeleton.forced_redundant)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = (skeleton.grouping_steps, skeleton.redundant)
    return plan


def _max_failures(params: GroupingParams) -> int:
    """Sample points a valid pair may fail: fewer than points - (smallest count c with c / points >
    success_ratio); -1 when no count is enough."""
    k = params.points_per_limb
    ok = [c for c in range(k + 1) if c / k > params.success_ratio]
    return k - ok[0] if ok else -1


@functools.cache
def _middle_order(k: int) -> tuple[int, ...]:
    """The middle sample points 1 .. k - 2, each next one as far as possible from those taken."""
    left = list(range(1, k - 1))
    taken = [0, k - 1]
    out = []
    while left:
        t = max(left, key=lambda c: (min(abs(c - u) for u in taken), -c))
        left.remove(t)
        taken.append(t)
        out.append(t)
    return tuple(out)


def _pair_layout(limb_ab: list[tuple[int, int, int]], sizes: list[int]
                 ) -> tuple[list[int], list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs of every step laid out in blocks, one per (step, b peak) holding the
    step's a peaks: per step its a and b peak counts (n, m); a_row per a peak; (blk_step, blk_row,
    blk_n) per block; per pair its block and its a peak's position in the a table; rows index all
    peaks. The per-step values are computed in Python (a few dozen), the arrays one call each."""
    offsets = [0]
    for c in sizes:
        offsets.append(offsets[-1] + c)
    n = [sizes[t[1]] for t in limb_ab]
    m = [sizes[t[2]] for t in limb_ab]
    a_first, b_first, pair_first = [0], [0], [0]
    for s_n, s_m in zip(n, m):
        a_first.append(a_first[-1] + s_n)
        b_first.append(b_first[-1] + s_m)
        pair_first.append(pair_first[-1] + s_n * s_m)
    a_shift = np.array([f - offsets[t[1]] for f, t in zip(a_first, limb_ab)], np.intp)
    b_shift = np.array([f - offsets[t[2]] for f, t in zip(b_first, limb_ab)], np.intp)
    a_row = np.arange(a_first[-1]) - a_shift.repeat(n)
    blk_step = np.arange(len(limb_ab)).repeat(m)
    blk_row = np.arange(b_first[-1]) - b_shift.repeat(m)
    blk_n = np.array(n, np.intp).repeat(m)
    blk_first = blk_n.cumsum() - blk_n
    at = np.arange(pair_first[-1]) - (blk_first - np.array(a_first[:-1], np.intp).repeat(m)).repeat(blk_n)
    blk = np.arange(len(blk_n)).repeat(blk_n)
    return n, m, a_row, blk_step, blk_row, blk_n, blk, at


# The middle points left are read at once when that reads at most this many cells (per channel)
# more than round by round would (each round is ~25 NumPy calls): the last rounds, where few pairs
# leave, or every round of a small image. 2048 made the 20-noisy bench ~1% slower (731 pairs x 3
# points at once against 731 + 524 + 524), 1024 batches only its last two rounds (524 pairs each).
_TAIL_EXTRA = 1024


def _projections(t: np.ndarray, pair: tuple[np.ndarray, ...], base: np.ndarray, read, w: int, hw: int
                 ) -> np.ndarray:
    """The pairs' PAF projections at sample point t: a float32 scalar (pairs,), or a (points, 1)
    column of points (points, pairs), element for element the reference's float32 operations.
    pair: (ax, ay, ux, uy, sx, sy); base: the flat index of each pair's x channel."""
    ax, ay, ux, uy, sx, sy = pair
    py = sy * t
    py += ay
    px = sx * t
    px += ax
    # cell index within a channel in int32 (float32 -> int32 converts in SIMD, -> int64 does not)
    cell = np.rint(py, out=py).astype(np.int32)
    cell *= w
    cell += np.rint(px, out=px).astype(np.int32)
    idx = (base + cell).reshape(-1)
    s = read(idx).reshape(cell.shape)
    s *= ux
    idx += hw
    fy = read(idx).reshape(cell.shape)
    fy *= uy
    s += fy
    return s


def _middle_points(pair: tuple[np.ndarray, ...], passed: np.ndarray, flat: PafReader, w: int, hw: int,
                   thr: float, allowed: int, k: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The middle sample points in rounds (spread out, so that a pair crossing no limb fails
    early), each gathered for the pairs still in the running; the arrays are compacted as pairs
    leave. A round reads one point, or all the points left once n * (points left - 1) <=
    _TAIL_EXTRA (the last rounds, or every point of a small image: a pair then reads up to that
    many cells it would have skipped, for a few calls instead of ~25 per round). pair: (ax, ay,
    ux, uy, sx, sy, base) of the pairs; passed: their points above thr so far (of 2). Returns the
    survivors' positions among the pairs and their projections (k, survivors), the end points'
    rows left for the caller: each round's projections are kept as computed and the survivors
    traced back through the compactions (a few calls on a few hundred pairs, instead of writing
    every round's values into a table)."""
    *pair, base = pair
    rounds = []
    done = 2
    read = flat.__getitem__
    order = _middle_order(k)
    i = 0
    while i < len(order) and len(passed):
        n = len(passed)
        if n * (len(order) - i - 1) <= _TAIL_EXTRA:  # all the points left, one row each
            ts = order[i:]
            s = _projections(np.array(ts, np.float32)[:, None], pair, base, read, w, hw)
            for row in s > thr:
                passed += row
            done += len(ts)
            rounds.append((ts, s, None))
            break
        t = order[i]
        i += 1
        s = _projections(np.float32(t), pair, base, read, w, hw)
        passed += s > thr
        done += 1
        keep = (passed >= done - allowed).nonzero()[0]
        # compacting 8 arrays costs more than carrying a few pairs that have already failed (a
        # pair that has failed too many points can never pass again: passed rises by at most 1
        # a round, the bar by 1); after the last round the survivors are traced back instead
        if len(keep) * 4 < n * 3 and i < len(order):
            pair = tuple(v.take(keep) for v in pair)
            base = base.take(keep)
            passed = passed.take(keep)
        else:
            keep = None
        rounds.append((t, s, keep))
    pos = (passed >= done - allowed).nonzero()[0]
    vals = np.empty((k, len(pos)), dtype)
    for t, s, keep in reversed(rounds):
        if keep is not None:
            pos = keep.take(pos)
        if s.ndim == 1:
            vals[t] = s.take(pos)
        else:  # the points read at once
            vals[list(t)] = s.take(pos, axis=1)
    return pos, vals


def _score_steps(limb_ab: list[tuple[int, int, int]], sizes: list[int], xy32: np.ndarray,
                 flat: PafReader, params: GroupingParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """score_candidates for the candidates of every limb at once; only valid candidates are returned.

    limb_ab: (limb, a, b) per step with peaks at both ends. Returns (step position, a row, b row,
    score), a and b rows indexing xy32 (all peaks), in step order and, within a step, in b-major,
    a-minor order. Same arithmetic as score_candidates, element for element; most candidates fail
    at the first sampled points, so points are evaluated in rounds and a candidate leaves as soon
    as it has failed more points than a valid pair may (its full sum is then never needed); each
    point's projection is gathered once (the PAF reads are scattered over a map larger than the
    cache and dominate) and kept for the final sum. Pairs are laid out in blocks, one per (step, b peak) holding the step's a peaks, so every
    per-pair index is a repeat of a per-block or per-peak value (no integer division).
    """
    k = params.points_per_limb
    allowed = _max_failures(params)
    empty = np.zeros(0, np.intp)
    if not limb_ab or allowed < 0:
        return empty, empty, empty, np.zeros(0)
    _, h, w = flat.shape
    hw = h * w
    xs, ys = xy32[:, 0], xy32[:, 1]
    xi, yi = xs.astype(np.intp), ys.astype(np.intp)
    n, m, a_row, blk_step, blk_row, blk_n, blk, at = _pair_layout(limb_ab, sizes)
    chan = np.array([2 * hw * t[0] for t in limb_ab], np.intp)  # each step's x channel's first flat index
    # The first and last sample points are the peaks themselves (rint(a + 0) = a, and
    # rint(a + (points - 1) * step * (b - a)) = b for any map size), so their field values are
    # read once per peak and limb (both ends' x values in one read, their y values in another); a
    # pair's projection there is then formed exactly as below.
    blk_chan = chan.repeat(m)
    loc = np.concatenate((chan.repeat(n) + yi[a_row] * w + xi[a_row], blk_chan + yi[blk_row] * w + xi[blk_row]))
    ends = (flat[loc], flat[loc + hw])  # x, then y (a reader upsampling channels on first touch: x ones, then y ones)
    n_a = len(a_row)
    # Per-pair values are a per-block value repeated (np.repeat: sequential, ~5x cheaper than a
    # gather) or a per-a-peak value taken through `at`.
    ax = xs[a_row].take(at)
    ay = ys[a_row].take(at)
    vx = xs[blk_row].repeat(blk_n)
    vx -= ax
    vy = ys[blk_row].repeat(blk_n)
    vy -= ay
    norm = np.sqrt(vx * vx + vy * vy)
    norm += 1e-6
    ux = vx / norm
    uy = vy / norm
    thr = params.min_paf_score
    s_a = ends[0][:n_a].take(at)
    s_a *= ux
    f = ends[1][:n_a].take(at)
    f *= uy
    s_a += f
    s_b = ends[0][n_a:].repeat(blk_n)
    s_b *= ux
    f = ends[1][n_a:].repeat(blk_n)
    f *= uy
    s_b += f
    passed = (s_a > thr).view(np.int8) + (s_b > thr)
    sel = (passed >= 2 - allowed).nonzero()[0]
    # Every point's projection is gathered once per pair: the middle points one at a time, each
    # for the pairs still in the running, spread out so that a pair crossing no limb fails early.
    step = 1 / (k - 1)
    pair = tuple(v.take(sel) for v in (ax, ay, ux, uy, vx, vy, passed))
    sx, sy = pair[4] * step, pair[5] * step  # (the reference's float32 step * (b - a))
    base = blk_chan.take(blk.take(sel))
    pos, vals = _middle_points((*pair[:4], sx, sy, base), pair[6], flat, w, hw, thr, allowed, k, s_a.dtype)
    sel = sel.take(pos)
    vals[0] = s_a.take(sel)
    vals[k - 1] = s_b.take(sel)
    # the survivors' sums as the reference forms them, over contiguous (pairs, points) rows
    s = np.ascontiguousarray(vals.T)
    ok = s > thr
    counted = ok.sum(1)
    score = (s * ok).sum(1) / (counted + 1e-6)
    keep = (score > 0) & (counted / k > params.success_ratio)
    sel = sel[keep]
    b_sel = blk[sel]
    return blk_step[b_sel], a_row[at[sel]], blk_row[b_sel], score[keep]


def group(heatmaps: np.ndarray, pafs: np.ndarray | PafReader, skeleton, params: GroupingParams | None = None,
          peaks: list[np.ndarray] | None = None, return_counts: bool = False,
          order: Sequence[tuple[int, int, int]] | None = None, **overrides
          ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assemble instances from heatmaps (K or K+1, H, W) and PAFs (2L, H, W), an array or a PafReader.

    Returns poses (P, K, 3) with x, y, peak score per keypoint (all -1 where missing) and the
    entries' total scores (P,): the sum of the member peaks' scores and of the accepted
    connections' scores. With return_counts, also (P,) the entry's keypoint count as the reference
    keeps it (keypoints filled in by redundant limbs are not counted). Entries come in the order
    they were created. `overrides` set GroupingParams fields (e.g. threshold=0.2); `peaks` skips
    peak extraction; `order` replaces the skeleton's walk, (limb, known end, new end) per step
    (tree limbs parent first, redundant limbs last), e.g. the reference's hand-written order.
    """
    params = params or _DEFAULT_PARAMS
    steps, redundant = _plan(skeleton)
    if order is not None:
        steps = tuple(order)
    if overrides:
        params = GroupingParams(**{**params.__dict__, **overrides})
    k = skeleton.num_keypoints
    hm, pf = _checked_maps(heatmaps, pafs, skeleton)
    if peaks is None:
        all_pts, sizes = all_peaks(hm, params.threshold, params.min_dist, k)
        sizes = sizes.tolist()
    else:
        sizes = [len(p) for p in peaks]
        all_pts = np.concatenate(peaks) if peaks else np.zeros((0, 4))
    xy32 = all_pts[:, :2].astype(np.float32)  # the reference keeps its keypoints in float32
    pt_score = all_pts[:, 2].tolist()
    limbs = skeleton.limbs
    walk = [(si, li) for si, (li, _kn, _nw) in enumerate(steps) if sizes[limbs[li][0]] and sizes[limbs[li][1]]]
    pos, ra, rb, sc = _score_steps([(li, *limbs[li]) for _si, li in walk], sizes, xy32, pf, params)
    bounds = pos.searchsorted(np.arange(len(walk) + 1)).tolist()
    ra_l, rb_l, sc_l = ra.tolist(), rb.tolist(), sc.tolist()
    order = _descending(pos, sc, bounds).tolist()
    # entries: ids[e][type] = peak row (in all_pts) or -1; holders[row] = the entries holding that
    # peak, so a connection finds its entry without scanning them all (the reference's inner loop)
    ids: list[list[int]] = []
    count: list[int] = []
    total: list[float] = []
    holders: list = [None] * len(all_pts)
    used_k = [-1] * len(all_pts)
    used_n = [-1] * len(all_pts)
    for w_i, (si, li) in enumerate(walk):
        lo, hi = bounds[w_i], bounds[w_i + 1]
        if lo == hi:
            continue
        a, b = limbs[li]
        _li, known, new = steps[si]
        if redundant[li]:
            _fill(ids, holders, a, b, _greedy(order[lo:hi], ra_l, rb_l, sc_l))
            continue
        rk, rn = (ra_l, rb_l) if known == a else (rb_l, ra_l)
        _connect(order[lo:hi], rk, rn, sc_l, known, new, ids, holders, count, total, pt_score, k, used_k, used_n, w_i)
    # the entries kept, chosen in Python (a few dozen); the same float64 mean as the reference's
    min_kp, min_mean = params.min_keypoints, params.min_mean_score
    kept = [r for r, (c, t) in enumerate(zip(count, total)) if c >= min_kp and not t / max(c, 1) < min_mean]
    ids_a = np.array([ids[r] for r in kept], np.intp).reshape(-1, k)
    count_a = np.array([count[r] for r in kept], np.int64)
    total_a = np.array([total[r] for r in kept], np.float64)
    # a missing keypoint (-1) takes the table's last row, all -1
    table = np.empty((len(all_pts) + 1, 3))
    table[:-1] = all_pts[:, :3]
    table[-1] = -1.0
    poses = table[ids_a]
    if return_counts:
        return poses, total_a, count_a
    return poses, total_a


def _checked_maps(heatmaps: np.ndarray, pafs: np.ndarray | PafReader, skeleton) -> tuple[np.ndarray, PafReader]:
    """The heatmaps as an array and the PAFs as a reader, ValueError when their channels do not
    fit the skeleton."""
    k = skeleton.num_keypoints
    hm = np.asarray(heatmaps)
    pf = pafs if isinstance(pafs, PafReader) else _ArrayPafs(np.asarray(pafs))
    if hm.ndim != 3 or hm.shape[0] not in (k, k + 1):
        raise ValueError(f"heatmaps must be ({k} or {k + 1}, H, W) for skeleton {skeleton.name!r}, got {hm.shape}")
    if len(pf.shape) != 3 or pf.shape[0] != 2 * skeleton.num_limbs or pf.shape[1:] != hm.shape[1:]:
        raise ValueError(f"pafs must be ({2 * skeleton.num_limbs}, {hm.shape[1]}, {hm.shape[2]}), got {pf.shape}")
    return hm, pf


def _connect(order: list[int], rk: list[int], rn: list[int], score: list[float], known: int, new: int,
             ids: list[list[int]], holders: list, count: list[int], total: list[float],
             pt_score: list[float], k: int, used_k: list[int], used_n: list[int], stamp: int) -> None:
    """One tree limb's greedy matching and its connections in one loop: candidates taken in
    `order` (indices into rk, rn, score: the known and new ends' peak rows, the scores), each peak
    once (used_k / used_n[row] == stamp: taken in this step; lists shared by all steps, so no set
    per step); each connection extends the entries holding its known end's peak (holders[row]:
    a list of entries or None), or starts a new entry of the two peaks."""
    for o in order:
        gk = rk[o]
        gn = rn[o]
        if used_k[gk] == stamp or used_n[gn] == stamp:
            continue
        used_k[gk] = stamp
        used_n[gn] = stamp
        s = score[o]
        rows = holders[gk]
        if rows:
            for r in rows:
                e = ids[r]
                old = e[new]
                if old != gn:  # (a tree walk never overwrites; the rule does, so follow it)
                    if old >= 0:
                        holders[old].remove(r)
                    h = holders[gn]
                    if h is None:
                        holders[gn] = [r]
                    else:
                        h.append(r)
                e[new] = gn
                count[r] += 1
                total[r] += pt_score[gn] + s
        else:
            e = [-1] * k
            e[known] = gk
            e[new] = gn
            r = len(ids)
            ids.append(e)
            count.append(2)
            total.append(pt_score[gk] + pt_score[gn] + s)
            holders[gk] = [r]
            h = holders[gn]
            if h is None:
                holders[gn] = [r]
            else:
                h.append(r)


def _descending(pos: np.ndarray, score: np.ndarray, bounds: list[int]) -> np.ndarray:
    """The valid candidates (sorted by step) in the order the greedy matching takes them: per
    step, NumPy's default argsort of the step's scores, reversed (the reference's call). With no
    two equal scores in a step that order is the descending one, so one sort serves every step;
    ties are left to each step's own argsort, whose order among equals is the reference's."""
    order = np.lexsort((-score, pos))
    if len(order) < 2:
        return order
    ps, ss = pos[order], score[order]
    if not np.any((ps[1:] == ps[:-1]) & (ss[1:] == ss[:-1])):
        return order
    parts = [lo + np.argsort(score[lo:hi])[::-1] for lo, hi in zip(bounds[:-1], bounds[1:])]
    return np.concatenate(parts) if parts else order


def _greedy(order: list[int], ra: list[int], rb: list[int], score: list[float]) -> list[tuple[int, int, float]]:
    """match_greedy on one step's valid candidates, taken in `order` (indices into ra, rb, score:
    peak rows and scores): (a row, b row, score)."""
    out = []
    used_a: set[int] = set()
    used_b: set[int] = set()
    for o in order:
        i, j = ra[o], rb[o]
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j, score[o]))
    return out


def _fill(ids: list[list[int]], holders: list, a: int, b: int, conn: list[tuple[int, int, float]]) -> None:
    """A redundant limb only fills a missing end of an entry that holds the other end; neither the
    count nor the score changes (as the reference). An entry can match on one side only, and peaks
    within a limb's connections are unique, so the fills are independent of their order."""
    for ga, gb, _s in conn:
        for r in list(holders[ga] or ()):
            if ids[r][a] == ga and ids[r][b] == -1:
                ids[r][b] = gb
                if holders[gb] is None:
                    holders[gb] = [r]
                else:
                    holders[gb].append(r)
        for r in list(holders[gb] or ()):
            if ids[r][b] == gb and ids[r][a] == -1:
                ids[r][a] = ga
                if holders[ga] is None:
                    holders[ga] = [r]
                else:
                    holders[ga].append(r)


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
