"""Grouping: parity with a port of the reference's current algorithm, ground-truth recovery, edges.

`ref_extract` / `ref_group` below port the reference's extract_keypoints / group_keypoints
(Daniil-Osokin/lightweight-human-pose-estimation.pytorch, modules/keypoints.py, as it is today),
written from the rules of ../shared/reference/lwop-conventions.md §5 with the reference's
structure: loops where it loops (peak suppression, the greedy matching, the assembly over
connections x entries), arrays where it uses arrays (the whole-map peak test and the scoring of all
candidate pairs of a limb, in float32 like its keypoint arrays, so ties and thresholds fall alike).
Its tables are the reference's hard-coded 18-point ones unless given. Note the PAF table is not in
its limb-list order: limb [1, 2] (neck-right shoulder) reads PAF channels 12, 13. The template
openpose18.yaml lists limbs in the reference's training PAF-channel order, so template limb i owns
channels 2i, 2i + 1. bench/bench_grouping.py times `ref_evaluate` (val.py's loop on (H, W, C) maps,
the layout the reference's infer returns) for its speed ratio, so the port keeps the reference's
speed-relevant structure too: one padding and strided channel views in the peak search, NumPy
scalars in its loops.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from repo_paths import TEMPLATES

from posedata import skeleton as S
from posedata.grouping import extract_peaks, group, match_greedy, reference_tables, score_candidates

# ------------------------------------------------------------------ reference port
REF_LIMBS = [[1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10], [1, 11],
             [11, 12], [12, 13], [1, 0], [0, 14], [14, 16], [0, 15], [15, 17], [2, 16], [5, 17]]
REF_PAFS = [[12, 13], [20, 21], [14, 15], [16, 17], [22, 23], [24, 25], [0, 1], [2, 3], [4, 5],
            [6, 7], [8, 9], [10, 11], [28, 29], [30, 31], [34, 35], [32, 33], [36, 37], [18, 19], [26, 27]]
REF_FILL_ONLY = (17, 18)
# the reference's walk as (template limb, known end, new end) steps, for group(..., order=...)
REF_ORDER = tuple((px // 2, a, b) for (a, b), (px, _py) in zip(REF_LIMBS, REF_PAFS, strict=True))


def ref_extract(heatmap: np.ndarray, by_type: list, first_id: int) -> int:
    """Port of extract_keypoints: one channel (H, W), thresholded IN PLACE as the reference does (val.py
    hands it a strided view of its own (H, W, C) maps); appends a list of (x, y, score, id). One
    zero padding of 2 and four shifted views of it (the current code; an older one padded five
    times); the positions stay NumPy scalars, as the reference's zip of np.nonzero leaves them."""
    heatmap[heatmap < 0.1] = 0
    bordered = np.pad(heatmap, [(2, 2), (2, 2)], mode="constant")
    h2, w2 = bordered.shape
    centre = bordered[1:h2 - 1, 1:w2 - 1]
    peaks = ((centre > bordered[1:h2 - 1, 2:w2]) & (centre > bordered[1:h2 - 1, 0:w2 - 2])
             & (centre > bordered[2:h2, 1:w2 - 1]) & (centre > bordered[0:h2 - 2, 1:w2 - 1]))
    peaks = peaks[1:centre.shape[0] - 1, 1:centre.shape[1] - 1]
    pts = sorted(zip(np.nonzero(peaks)[1], np.nonzero(peaks)[0]), key=lambda p: p[0])  # (x, y), stable by x
    gone = np.zeros(len(pts), np.uint8)
    found = []
    for i in range(len(pts)):
        if gone[i]:
            continue
        for j in range(i + 1, len(pts)):
            if math.sqrt((pts[i][0] - pts[j][0]) ** 2 + (pts[i][1] - pts[j][1]) ** 2) < 6:
                gone[j] = 1
        found.append((pts[i][0], pts[i][1], heatmap[pts[i][1], pts[i][0]], first_id + len(found)))
    by_type.append(found)
    return len(found)


def ref_nms(a_idx: np.ndarray, b_idx: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Port of connections_nms: greedy by NumPy's default argsort reversed, each keypoint once."""
    order = scores.argsort()[::-1]
    scores, a_idx, b_idx = scores[order], a_idx[order], b_idx[order]
    idx, used_a, used_b = [], set(), set()
    for t, (i, j) in enumerate(zip(a_idx, b_idx)):
        if i not in used_a and j not in used_b:
            idx.append(t)
            used_a.add(i)
            used_b.add(j)
    idx = np.asarray(idx, dtype=np.int32)
    return a_idx[idx], b_idx[idx], scores[idx]


def ref_group(by_type: list, pafs_hwc: np.ndarray, size: int = 20, min_paf_score: float = 0.05,
              tables: tuple = (REF_LIMBS, REF_PAFS, REF_FILL_ONLY)):
    """Port of group_keypoints: pafs (H, W, 2L); returns (entries (P, size), all keypoints (N, 4)).
    `tables` = (BODY_PARTS_KPT_IDS, BODY_PARTS_PAF_IDS, fill-only part ids), the reference's by
    default; entry column -1 is the keypoint count, -2 the total score."""
    kpt_ids, paf_ids, fill_only = tables
    all_kp = np.array([p for lst in by_type for p in lst]).reshape(-1, 4)  # float64: scores as found
    points = 10
    t = np.arange(points, dtype=np.float32).reshape(1, -1, 1)
    typed = [np.array(lst, np.float32).reshape(-1, 4) for lst in by_type]  # float32, as the reference's
    entries: list = []
    for part in range(len(paf_ids)):
        part_pafs = pafs_hwc[:, :, paf_ids[part]]  # a copy, taken before the skip as the reference does
        ka_id, kb_id = kpt_ids[part]
        ka, kb = typed[ka_id], typed[kb_id]
        n, m = len(ka), len(kb)
        if n == 0 or m == 0:  # no one-keypoint entries
            continue
        # every candidate (a_i, b_j), listed b-major: candidate j * n + i
        start = np.broadcast_to(ka[None, :, :2], (m, n, 2))
        vec = (kb[:, None, :2] - start).reshape(-1, 1, 2)
        cells = ((1 / (points - 1) * vec) * t + start.reshape(-1, 1, 2)).round().astype(np.int32)  # (pairs, 10, 2)
        field = part_pafs[cells[..., 1].ravel(), cells[..., 0].ravel()].reshape(-1, points, 2)
        unit = vec / (np.linalg.norm(vec, ord=2, axis=-1, keepdims=True) + 1e-6)
        per_point = (field * unit).sum(-1).reshape(-1, points)
        counted = per_point > min_paf_score
        n_counted = counted.sum(1)
        score = (per_point * counted).sum(1) / (n_counted + 1e-6)  # mean over counted points
        valid = np.where(np.logical_and(score > 0, n_counted / points > 0.8))[0]
        if len(valid) == 0:
            continue
        b_idx, a_idx = np.divmod(valid, n)
        a_idx, b_idx, vscore = ref_nms(a_idx, b_idx, score[valid])
        conns = list(zip(ka[a_idx, 3].astype(np.int32), kb[b_idx, 3].astype(np.int32), vscore))
        if len(conns) == 0:
            continue
        if part in fill_only:  # only fills a missing end; count and score unchanged
            for ga, gb, _ in conns:
                for e in entries:
                    if e[ka_id] == ga and e[kb_id] == -1:
                        e[kb_id] = gb
                    elif e[kb_id] == gb and e[ka_id] == -1:
                        e[ka_id] = ga
            continue
        # (the reference special-cases part 0 to create the entries; with no entry yet that is
        # exactly this branch)
        for ga, gb, s in conns:
            held = 0
            for e in entries:
                if e[ka_id] == ga:
                    e[kb_id] = gb
                    held += 1
                    e[-1] += 1
                    e[-2] += all_kp[gb, 2] + s
            if held == 0:
                e = np.ones(size) * -1
                e[ka_id], e[kb_id] = ga, gb
                e[-1] = 2
                e[-2] = np.sum(all_kp[[ga, gb], 2]) + s
                entries.append(e)
    kept = [e for e in entries if not (e[-1] < 3 or e[-2] / e[-1] < 0.2)]
    return np.asarray(kept).reshape(-1, size), all_kp


def ref_evaluate(heat_hwc: np.ndarray, pafs_hwc: np.ndarray, tables: tuple = (REF_LIMBS, REF_PAFS, REF_FILL_ONLY),
                 k: int = 18):
    """The reference's evaluate loop (val.py) on its own (H, W, C) maps, as its infer returns them:
    extract_keypoints on each channel's strided view (thresholding heat_hwc in place), then
    group_keypoints. Returns ((entries, all keypoints), by_type)."""
    by_type: list = []
    total = 0
    for c in range(k):
        total += ref_extract(heat_hwc[:, :, c], by_type, total)
    return ref_group(by_type, pafs_hwc, size=k + 2, tables=tables), by_type


def ref_run(heatmaps: np.ndarray, pafs: np.ndarray, tables: tuple = (REF_LIMBS, REF_PAFS, REF_FILL_ONLY),
            k: int = 18):
    """ref_evaluate on channels-first maps, left unchanged: the heatmaps are copied into the
    reference's (H, W, C) layout (its extraction writes into them); the PAFs are copied only when
    they are not already an (H, W, C) array seen channels-first."""
    heat_hwc = np.array(heatmaps.transpose(1, 2, 0), order="C")
    return ref_evaluate(heat_hwc, np.ascontiguousarray(pafs.transpose(1, 2, 0)), tables, k)


def ref_poses(entries: np.ndarray, all_kp: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference entries as group()'s output: poses (P, K, 3) x, y, score (-1 missing), totals, counts."""
    poses = np.full((len(entries), k, 3), -1.0)
    for p, e in enumerate(entries):
        for c in range(k):
            if e[c] >= 0:
                poses[p, c] = all_kp[int(e[c]), :3]
    return poses, entries[:, -2].copy(), entries[:, -1].astype(np.int64)


def assert_identical(ours: tuple, ref: tuple) -> None:
    """Same entries in the same order, same counts, scores equal to the bit."""
    np.testing.assert_array_equal(ours[0], ref[0])
    np.testing.assert_array_equal(ours[2], ref[2])
    np.testing.assert_array_equal(ours[1], ref[1])


def ref_instances(entries: np.ndarray, all_kp: np.ndarray, k: int = 18) -> list[tuple]:
    """Entries as sorted (keypoint sets of (k, x, y), score, count) for order-free comparison."""
    out = []
    for e in entries:
        pts = frozenset((c, int(all_kp[int(g), 0]), int(all_kp[int(g), 1])) for c, g in enumerate(e[:k]) if g >= 0)
        out.append((pts, float(e[-2]), int(e[-1])))
    return sorted(out, key=lambda t: sorted(t[0]))


def our_instances(poses: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> list[tuple]:
    out = []
    for p, s, c in zip(poses, scores, counts, strict=True):
        pts = frozenset((k, int(x), int(y)) for k, (x, y, _) in enumerate(p) if x >= 0)
        out.append((pts, float(s), int(c)))
    return sorted(out, key=lambda t: sorted(t[0]))


def assert_same_groups(ours: list[tuple], ref: list[tuple]) -> None:
    """Same entries and counts; scores equal up to the order of summing an entry's terms."""
    assert [o[0] for o in ours] == [r[0] for r in ref]
    assert [o[2] for o in ours] == [r[2] for r in ref]
    np.testing.assert_allclose([o[1] for o in ours], [r[1] for r in ref], rtol=1e-13, atol=0)


# ------------------------------------------------------------------ inputs
OP18 = S.load(TEMPLATES / "openpose18.yaml")


def random_maps(rng: np.random.Generator, k: int, n_limbs: int, h: int, w: int, blobs=(0, 7), paf_grid=(4, 5)):
    """Gaussian blobs with noise per keypoint channel (some channels empty) and smooth random
    vector fields per limb (some zero): many crossing candidates, lone ends, fills."""
    import cv2

    yy, xx = np.mgrid[0:h, 0:w]
    heat = np.zeros((k + 1, h, w), np.float32)
    for c in range(k):
        for _ in range(rng.integers(*blobs)):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            s = rng.uniform(1.5, 4)
            heat[c] += rng.uniform(0.2, 1.0) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        heat[c] += rng.uniform(0, 0.06, (h, w))
    heat[k] = 1 - heat[:k].max(0)
    pafs = np.zeros((2 * n_limbs, h, w), np.float32)
    for li in range(n_limbs):
        if rng.random() < 0.1:
            continue
        coarse = rng.normal(0, 1, (2, *paf_grid)).astype(np.float32)
        for c in range(2):
            pafs[2 * li + c] = cv2.resize(coarse[c], (w, h), interpolation=cv2.INTER_LINEAR)
    return heat, pafs


# A person facing the camera (x right, y down, unit box), for the human templates: their tree
# layout would put openpose18's derived neck (the shoulders' mean) on the hips' row.
HUMAN = {
    "nose": (0.5, 0.1), "neck": (0.5, 0.22), "right_shoulder": (0.34, 0.22), "right_elbow": (0.24, 0.37),
    "right_wrist": (0.18, 0.52), "left_shoulder": (0.66, 0.22), "left_elbow": (0.76, 0.37), "left_wrist": (0.82, 0.52),
    "right_hip": (0.4, 0.56), "right_knee": (0.38, 0.76), "right_ankle": (0.36, 0.96), "left_hip": (0.6, 0.56),
    "left_knee": (0.62, 0.76), "left_ankle": (0.64, 0.96), "right_eye": (0.45, 0.05), "left_eye": (0.55, 0.05),
    "right_ear": (0.39, 0.09), "left_ear": (0.61, 0.09),
}


def layout_instances(sk, n: int, rng: np.random.Generator, size: float, cols: int, jitter: float = 0.12,
                     absent: float = 0.0, margin: float = 32) -> np.ndarray:
    """n instances (n, K, 3) in skeleton order, internal visibility, on a grid of cells `size`
    wide starting `margin` from the image's top left: the skeleton's tree layout, jittered,
    scaled and shifted. (Keep a margin: cubic upsampling of a peak within a few cells of the
    border rings into a second, spurious peak on the border row, in the reference too.)"""
    from posedata.plots import tree_layout

    if all(k in HUMAN for k in sk.keypoints):
        base = np.array([[HUMAN[k][0], 1 - HUMAN[k][1]] for k in sk.keypoints])
    else:
        base = tree_layout(sk).astype(np.float64)
    base -= base.min(0)
    base /= np.maximum(base.max(0), 1e-9)
    out = np.zeros((n, sk.num_keypoints, 3))
    for i in range(n):
        pts = base + rng.normal(0, jitter / 4, base.shape)
        s = size * rng.uniform(0.55, 0.75)
        r, c = divmod(i, cols)
        out[i, :, 0] = margin + c * size + size * 0.12 + pts[:, 0] * s
        out[i, :, 1] = margin + r * size + size * 0.12 + (1 - pts[:, 1]) * s * 0.9
        out[i, :, 2] = 1
        if absent:
            out[i, rng.random(sk.num_keypoints) < absent, 2] = 2
    return out


def rendered_maps(sk, kps: np.ndarray, h: int, w: int, stride: int = 8):
    """Ground-truth maps rendered at 1/stride and upsampled as inference does."""
    import cv2

    from posedata.targets import render_heatmaps, render_pafs

    mh, mw = h // stride, w // stride
    heat = render_heatmaps(kps, mh, mw, stride)
    pafs = render_pafs(kps, sk.limbs_array, mh, mw, stride)
    up = lambda m: cv2.resize(m.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)  # noqa: E731
    return np.ascontiguousarray(up(heat)), np.ascontiguousarray(up(pafs))


# ------------------------------------------------------------------ peaks
def test_peaks_match_reference_on_random_maps():
    rng = np.random.default_rng(0)
    for _ in range(5):
        heat, _ = random_maps(rng, 18, 1, 60, 80, blobs=(0, 12))
        by_type: list = []
        total = 0
        for k in range(18):
            total += ref_extract(heat[k].copy(), by_type, total)
        ours = extract_peaks(heat, num_keypoints=18)
        assert len(ours) == 18
        for k in range(18):
            ref = np.array(by_type[k], dtype=np.float64).reshape(-1, 4)
            np.testing.assert_array_equal(ours[k], ref)


def test_peaks_plateau_ties_and_suppression():
    hm = np.zeros((2, 20, 30), np.float32)
    hm[0, 5, 5] = hm[0, 5, 6] = 0.9  # plateau: neither is strictly greater, no peak
    hm[0, 10, 10] = 0.5
    hm[0, 13, 12] = 0.8  # distance sqrt(13) < 6 to (10, 10): suppressed although higher (x order decides)
    hm[0, 10, 16] = 0.7  # distance exactly 6: kept
    hm[0, 15, 25] = 0.05  # below threshold
    hm[1, 0, 0] = 0.3  # at the border: outside counts as 0
    p = extract_peaks(hm)
    np.testing.assert_array_equal(p[0][:, :2], [[10, 10], [16, 10]])
    np.testing.assert_allclose(p[0][:, 2], [0.5, 0.7])
    np.testing.assert_array_equal(p[1], [[0, 0, np.float32(0.3), 2]])
    assert extract_peaks(hm, num_keypoints=1)[0].shape == (2, 4)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 39), st.integers(0, 29), st.floats(0.1, 1.0)), max_size=40),
       st.floats(1.0, 10.0))
def test_peaks_suppression_property(points, min_dist):
    """Kept peaks are pairwise at least min_dist apart, and every local maximum that was dropped
    lies within min_dist of a kept peak that comes before it in x order."""
    hm = np.zeros((1, 30, 40), np.float32)
    for x, y, v in points:
        hm[0, y, x] = v
    kept = extract_peaks(hm, min_dist=min_dist)[0]
    d = np.hypot(kept[:, None, 0] - kept[None, :, 0], kept[:, None, 1] - kept[None, :, 1])
    assert (d[np.triu_indices(len(kept), 1)] >= min_dist).all()
    all_peaks = extract_peaks(hm, min_dist=0)[0]
    kept_set = {(int(x), int(y)) for x, y in kept[:, :2]}
    for x, y in all_peaks[:, :2]:
        if (int(x), int(y)) not in kept_set:
            near = [(kx, ky) for kx, ky in kept[:, :2] if math.hypot(kx - x, ky - y) < min_dist and (kx, ky) <= (x, y)]
            assert near


# ------------------------------------------------------------------ parity with the reference
def _both(heat: np.ndarray, pafs: np.ndarray, sk=None, tables=None) -> tuple[tuple, tuple, tuple]:
    """(ours in the reference's walk, ours in the skeleton's walk, the port) for the same maps."""
    sk = sk or OP18
    if tables is None:
        tables, order = (REF_LIMBS, REF_PAFS, REF_FILL_ONLY), REF_ORDER
    else:
        order = None
    (entries, all_kp), _ = ref_run(heat, pafs, tables=tables, k=sk.num_keypoints)
    ref = ref_poses(entries, all_kp, sk.num_keypoints)
    walked = group(heat, pafs, sk, return_counts=True, order=order)
    default = group(heat, pafs, sk, return_counts=True)
    return walked, default, ref


@pytest.mark.parametrize("seed", range(6))
def test_group_matches_reference_on_random_maps(seed):
    rng = np.random.default_rng(100 + seed)
    heat, pafs = random_maps(rng, 18, 19, 72, 96)
    walked, default, ref = _both(heat, pafs)
    assert_identical(walked, ref)
    (entries, all_kp), _ = ref_run(heat, pafs)
    assert_same_groups(our_instances(*default), ref_instances(entries, all_kp))
    assert len(ref[0]) > 0  # the inputs do produce instances


def test_group_matches_reference_on_rendered_maps():
    rng = np.random.default_rng(7)
    n_total = 0
    for n in (1, 3, 6):
        kps = layout_instances(OP18, n, rng, size=120, cols=3, absent=0.15)
        heat, pafs = rendered_maps(OP18, kps, 320, 448)
        walked, default, ref = _both(heat, pafs)
        assert_identical(walked, ref)
        (entries, all_kp), _ = ref_run(heat, pafs)
        assert_same_groups(our_instances(*default), ref_instances(entries, all_kp))
        n_total += len(ref[0])
    assert n_total >= 8


def test_reference_port_on_its_own_layout_equals_the_channels_first_run():
    """The bench times ref_evaluate on (H, W, C) maps (strided channel views, thresholded in
    place); the parity tests run ref_run on channels-first maps, which it must leave unchanged.
    Both give the same entries and keypoints, and a second call on the thresholded maps too."""
    rng = np.random.default_rng(11)
    heat, pafs = rendered_maps(OP18, layout_instances(OP18, 3, rng, size=120, cols=3), 200, 400)
    sub = heat[:18, ::7, ::5]
    sub[sub < 0.01] += np.float32(0.08)  # scattered background cells between 0 and the threshold
    heat_before, pafs_before = heat.copy(), pafs.copy()
    (e1, kp1), by1 = ref_run(heat, pafs)
    np.testing.assert_array_equal(heat, heat_before)
    np.testing.assert_array_equal(pafs, pafs_before)
    heat_hwc, pafs_hwc = (np.ascontiguousarray(m.transpose(1, 2, 0)) for m in (heat, pafs))
    for _ in range(2):
        (e2, kp2), by2 = ref_evaluate(heat_hwc, pafs_hwc)
        np.testing.assert_array_equal(e2, e1)
        np.testing.assert_array_equal(kp2, kp1)
    assert len(e1) == 3
    low = (heat[:18] > 0) & (heat[:18] < 0.1)
    assert low.any() and not heat_hwc[:, :, :18][low.transpose(1, 2, 0)].any()  # zeroed in place, as the reference


def _maps_from_seed(seed: int, k: int, n_limbs: int, quantise: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(24, 72)), int(rng.integers(24, 96))
    heat, pafs = random_maps(rng, k, n_limbs, h, w, blobs=(0, int(rng.integers(2, 9))))
    if quantise:  # coarse values make exactly equal scores (ties) and plateaus common
        heat = np.round(heat * 4) / 4
        pafs = np.round(pafs * 2) / 2
    if rng.random() < 0.3:
        pafs = pafs.astype(np.float64)  # the scoring follows the field's dtype, as the reference's
    return heat.astype(np.float32), pafs


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_group_equals_reference_property(seed, quantise):
    """openpose18 on random heatmaps and PAFs: the reference's entries in its order with its
    scores to the bit (walking its order), the same entries in the skeleton's walk."""
    heat, pafs = _maps_from_seed(seed, 18, 19, quantise)
    walked, default, ref = _both(heat, pafs)
    assert_identical(walked, ref)
    (entries, all_kp), _ = ref_run(heat, pafs)
    assert_same_groups(our_instances(*default), ref_instances(entries, all_kp))


@pytest.mark.parametrize("tail", [-1, 0, 10**9])
def test_middle_points_in_rounds_or_at_once_equal_reference(monkeypatch, tail):
    """The middle sample points are read one per round, or all those left at once when n * (points
    left - 1) <= grouping._TAIL_EXTRA: forced never (-1), for the last point only (0) and from the
    first round (10**9), on random maps (quantised ones for ties, float64 PAFs) and on a larger map
    with many candidate pairs (rounds that compact, rounds that do not): the reference's entries
    and scores to the bit, the same read counts as the path forced implies."""
    import posedata.grouping as G

    monkeypatch.setattr(G, "_TAIL_EXTRA", tail)
    reads = []

    class Counting(G.PafReader):
        def __init__(self, pafs):
            self.shape, self._flat = pafs.shape, pafs.reshape(-1)

        def __getitem__(self, idx):
            reads.append(len(idx))
            return self._flat[idx]

    maps = [_maps_from_seed(1000 + seed, 18, 19, quantise=seed % 3 == 0) for seed in range(10)]
    maps.append(random_maps(np.random.default_rng(5), 18, 19, 160, 220, blobs=(20, 30)))
    for heat, pafs in maps:
        walked, default, ref = _both(heat, pafs)
        assert_identical(walked, ref)
        (entries, all_kp), _ = ref_run(heat, pafs)
        assert_same_groups(our_instances(*default), ref_instances(entries, all_kp))
        reads.clear()
        assert all(np.array_equal(a, b) for a, b in zip(group(heat, Counting(pafs), OP18, return_counts=True),
                                                        default, strict=True))
        middle = reads[2:]  # after the end points' x and y reads: x and y of each round
        assert middle[::2] == middle[1::2]
        if tail > 10**6:
            assert len(middle) <= 2  # every middle point in one round
    # the larger map's pairs last to its final point: 8 rounds (one at once), fewer pairs from round to
    # round as they fail, and rounds that carry their few failed pairs instead of compacting
    assert (len(middle), middle[0] > middle[-1], len(set(middle)) < 8) == ((2, False, True) if tail > 10**6
                                                                        else (16, True, True))


@st.composite
def random_skeletons(draw):
    """A tree of 2-9 keypoints (limbs listed parent -> child, in random file order) plus up to two
    cycle-closing limbs, declared redundant (fill-only) so the walk never goes against a limb."""
    k = draw(st.integers(2, 9))
    parents = [draw(st.integers(0, i - 1)) for i in range(1, k)]
    limbs = [[f"k{p}", f"k{i + 1}"] for i, p in enumerate(parents)]
    extra = draw(st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), max_size=2))
    tree = {tuple(sorted((p, i + 1))) for i, p in enumerate(parents)}
    redundant = []
    for a, b in extra:
        if a != b and tuple(sorted((a, b))) not in tree:
            tree.add(tuple(sorted((a, b))))
            redundant.append([f"k{a}", f"k{b}"])
    limbs += redundant
    order = draw(st.permutations(range(len(limbs))))
    d = {"name": "rnd", "keypoints": [f"k{i}" for i in range(k)], "limbs": [limbs[i] for i in order],
         "root": "k0", "flip": [], "sigmas": [0.05] * k, "redundant": redundant}
    return S.from_dict(d)


@settings(deadline=None)
@given(random_skeletons(), st.integers(0, 2**32 - 1), st.booleans())
def test_group_equals_reference_rules_for_any_skeleton(sk, seed, quantise):
    """Any skeleton: the port run with the tables `posedata export reference` prints gives exactly
    group()'s entries, order, counts and scores."""
    t = reference_tables(sk)
    assert not t["warnings"]
    tables = (t["BODY_PARTS_KPT_IDS"], t["BODY_PARTS_PAF_IDS"], tuple(t["fill_only_part_ids"]))
    heat, pafs = _maps_from_seed(seed, sk.num_keypoints, sk.num_limbs, quantise)
    (entries, all_kp), _ = ref_run(heat, pafs, tables=tables, k=sk.num_keypoints)
    ref = ref_poses(entries, all_kp, sk.num_keypoints)
    assert_identical(group(heat, pafs, sk, return_counts=True), ref)


def test_two_tied_shoulder_peaks_break_as_the_reference():
    """One neck, two equally strong right-shoulder peaks placed symmetrically about a uniform
    downward field: both candidates score exactly alike. The reference takes the later candidate
    (NumPy's argsort reversed); first-of-ties would take the other shoulder."""
    h, w = 100, 120
    heat = np.zeros((19, h, w), np.float32)
    pafs = np.zeros((38, h, w), np.float32)
    neck, rsh, relb = OP18.index("neck"), OP18.index("right_shoulder"), OP18.index("right_elbow")
    heat[neck, 40, 50] = 0.9
    heat[rsh, 50, 40] = heat[rsh, 50, 60] = 0.8  # (x 40, y 50) and (x 60, y 50): tied
    heat[relb, 70, 50] = 0.7
    for li in (OP18.limbs.index((neck, rsh)), OP18.limbs.index((rsh, relb))):
        pafs[2 * li + 1] = 1.0  # field (0, 1) everywhere
    walked, default, ref = _both(heat, pafs)
    assert_identical(walked, ref)
    assert_identical(default, ref)
    poses, scores, counts = default
    assert len(poses) == 1 and counts.tolist() == [3]
    assert poses[0, rsh, :2].tolist() == [60, 50]  # the later of the two tied candidates
    assert poses[0, relb, :2].tolist() == [50, 70]


def test_template_limbs_are_the_reference_paf_channels():
    """Template limb i is the limb whose PAF the reference reads from channels 2i, 2i + 1."""
    for (a, b), (cx, cy) in zip(REF_LIMBS, REF_PAFS, strict=True):
        assert cy == cx + 1 and cx % 2 == 0
        assert OP18.limbs[cx // 2] == (a, b)
    assert {i for i, r in enumerate(OP18.redundant) if r} == {REF_PAFS[p][0] // 2 for p in REF_FILL_ONLY}


# ------------------------------------------------------------------ ground truth, any skeleton
@pytest.mark.parametrize("name", ["openpose18", "hand21", "quadruped17", "object5", "coco17"])
def test_group_recovers_rendered_ground_truth(name):
    sk = S.load(TEMPLATES / f"{name}.yaml")
    rng = np.random.default_rng(3)
    kps = layout_instances(sk, 6, rng, size=128, cols=3)
    heat, pafs = rendered_maps(sk, kps, 320, 448)
    poses, scores = group(heat, pafs, sk)
    assert poses.shape == (6, sk.num_keypoints, 3) and scores.shape == (6,)
    # every found instance is one ground-truth instance, every keypoint within 3 px
    matched = set()
    for p in poses:
        d = np.linalg.norm(kps[:, :, :2] - p[None, :, :2], axis=2).mean(1)
        g = int(np.argmin(d))
        assert g not in matched
        matched.add(g)
        np.testing.assert_array_less(np.abs(p[:, :2] - kps[g, :, :2]), 3.0)
    assert len(matched) == 6


def test_group_on_empty_and_degenerate_maps():
    sk = S.load(TEMPLATES / "object5.yaml")
    heat = np.zeros((6, 40, 50), np.float32)
    pafs = np.zeros((8, 40, 50), np.float32)
    poses, scores = group(heat, pafs, sk)
    assert poses.shape == (0, 5, 3) and scores.shape == (0,)
    heat[0, 10, 10] = 1.0  # a centre without corners: no limb has peaks at both ends
    for min_keypoints in (3, 1):  # no one-keypoint entries, even when nothing is filtered
        poses, scores, counts = group(heat, pafs, sk, return_counts=True, min_keypoints=min_keypoints)
        assert len(poses) == 0


def test_group_rejects_wrong_channel_counts():
    sk = S.load(TEMPLATES / "object5.yaml")
    with pytest.raises(ValueError, match="heatmaps"):
        group(np.zeros((4, 10, 10)), np.zeros((8, 10, 10)), sk)
    with pytest.raises(ValueError, match="pafs"):
        group(np.zeros((6, 10, 10)), np.zeros((6, 10, 10)), sk)


def test_reversed_limb_direction_is_scored_along_the_paf():
    """A limb listed child -> parent in the file is walked parent first but scored a -> b."""
    d = {"name": "rev", "keypoints": ["root", "tip", "end"], "limbs": [["tip", "root"], ["tip", "end"]],
         "root": "root", "flip": [], "sigmas": [0.05] * 3}
    sk = S.from_dict(d)
    assert sk.grouping_steps[0] == (0, 0, 1)  # limb 0, known end root, new end tip
    kps = np.array([[[40, 20, 1], [40, 80, 1], [90, 80, 1]], [[150, 20, 1], [150, 80, 1], [200, 80, 1]]], float)
    heat, pafs = rendered_maps(sk, kps, 128, 256)
    poses, _ = group(heat, pafs, sk)
    assert len(poses) == 2
    flipped = pafs.copy()
    flipped[0:2] *= -1  # a field pointing root -> tip contradicts the limb: no connection
    poses, _ = group(heat, flipped, sk)
    assert len(poses) == 0


def test_score_candidates_and_greedy_matching():
    paf_x = np.ones((50, 50), np.float32)
    paf_y = np.zeros((50, 50), np.float32)
    a = np.array([[5.0, 5.0], [5.0, 30.0]])
    b = np.array([[25.0, 5.0], [25.0, 30.0], [5.0, 5.0]])
    score, valid = score_candidates(a, b, paf_x, paf_y)
    assert score.shape == valid.shape == (6,)  # b-major: candidate j * 2 + i is (a[i], b[j])
    score, valid = score.reshape(3, 2).T, valid.reshape(3, 2).T
    # along +x: score 1 (as the reference: sum / (count + 1e-6)); the pair (0, 2) has zero length
    assert valid[0, 0] and valid[1, 1] and not valid[0, 2]
    np.testing.assert_allclose(score[0, 0], 10 / (10 + 1e-6), rtol=1e-6)
    assert not valid[1, 2]  # b - a = (0, -25) is perpendicular to the field: dot 0
    # no length penalty: a limb as long as the map is wide scores like a short one
    long, ok = score_candidates(np.array([[0.0, 0.0]]), np.array([[49.0, 0.0]]), paf_x, paf_y)
    assert ok[0]
    np.testing.assert_allclose(long[0], score[0, 0], rtol=1e-6)
    cand = np.flatnonzero(valid.T.ravel())
    i, j, s = match_greedy(cand % 2, cand // 2, np.where(valid.T.ravel(), score.T.ravel(), 0)[cand])
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 0), (1, 1)]
    # ties: NumPy's default argsort, reversed, so the later of two equal candidates comes first
    i, j, s = match_greedy(np.array([0, 0]), np.array([0, 1]), np.array([0.5, 0.5]))
    assert i.tolist() == [0] and j.tolist() == [1]


def _whole_map_peaks(hm: np.ndarray, thr: float) -> set:
    """The reference's formulation, for any threshold: zero below it, strictly above 4 neighbours."""
    z = np.where(hm < thr, 0, hm)
    p = np.pad(z, [(0, 0), (1, 1), (1, 1)])
    c = p[:, 1:-1, 1:-1]
    peak = (c > p[:, 1:-1, :-2]) & (c > p[:, 1:-1, 2:]) & (c > p[:, :-2, 1:-1]) & (c > p[:, 2:, 1:-1])
    return {(int(k), int(x), int(y)) for k, y, x in zip(*np.nonzero(peak), strict=True)}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.1, 0.3, 0.0, -0.2]))
def test_peak_shortcut_equals_whole_map_formulation(seed, thr):
    rng = np.random.default_rng(seed)
    hm = np.round(rng.uniform(-0.3, 1.0, (3, 9, 11)), 1).astype(np.float32)  # rounding makes ties
    if seed % 3 == 0:  # NaN is not below the threshold and compares false: no peak beside it
        hm[rng.random(hm.shape) < 0.1] = np.nan
    got = extract_peaks(hm, threshold=thr, min_dist=0)
    ours = {(k, int(x), int(y)) for k, arr in enumerate(got) for x, y in arr[:, :2]}
    assert ours == _whole_map_peaks(hm, thr)


@pytest.mark.parametrize("seed", range(3))
def test_exported_reference_tables_group_alike_in_the_reference_code(seed):
    """`posedata export reference` tables pasted into the reference's group_keypoints give the
    same groups as its own hand-written tables (and as posedata)."""
    t = reference_tables(OP18)
    assert t["fill_only_part_ids"] == [17, 18] and not t["warnings"]
    tables = (t["BODY_PARTS_KPT_IDS"], t["BODY_PARTS_PAF_IDS"], tuple(t["fill_only_part_ids"]))
    rng = np.random.default_rng(300 + seed)
    heat, pafs = random_maps(rng, 18, 19, 72, 96)
    (e1, kp1), _ = ref_run(heat, pafs)
    (e2, kp2), _ = ref_run(heat, pafs, tables=tables)
    assert_same_groups(ref_instances(e2, kp2), ref_instances(e1, kp1))


def test_reference_tables_warn_about_limbs_against_the_walk():
    d = {"name": "rev", "keypoints": ["root", "tip", "end"], "limbs": [["tip", "root"], ["tip", "end"]],
         "root": "root", "flip": [], "sigmas": [0.05] * 3}
    t = reference_tables(S.from_dict(d))
    assert t["BODY_PARTS_KPT_IDS"] == [[0, 1], [1, 2]] and t["BODY_PARTS_PAF_IDS"] == [[0, 1], [2, 3]]
    assert len(t["warnings"]) == 1 and "[root, tip]" in t["warnings"][0]


@pytest.mark.parametrize("level", [0.0, 0.2])
def test_peaks_at_row_ends_are_not_neighbours(level):
    """A row's last cell and the next row's first cell are adjacent in memory but not on the map:
    a peak at either end survives a higher value at the other. Level 0.2 puts every cell above
    the threshold (a plateau, no peak of its own), which the peak search scans another way."""
    hm = np.full((2, 12, 16), level, np.float32)
    hm[0, 9, 15] = 0.6  # last column of row 9
    hm[0, 10, 0] = 0.9  # first column of row 10, next in memory
    hm[1, 9, 15] = 0.9
    hm[1, 10, 0] = 0.6
    peaks = extract_peaks(hm, min_dist=0)
    for k in range(2):
        assert {(k, int(x), int(y)) for x, y in peaks[k][:, :2]} == {(k, 15, 9), (k, 0, 10)}
    assert _whole_map_peaks(hm, 0.1) == {(k, x, y) for k in range(2) for x, y in ((15, 9), (0, 10))}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 27), st.integers(2, 23), st.sampled_from([0.1, 0.25]))
def test_peaks_of_sparse_maps_in_any_shape(seed, h, w, thr):
    """Mostly empty channels (the peak search skips bands of 8 rows holding no cell >= threshold),
    shapes not a multiple of the band, marks on band edges, row ends and channel edges, plateaus
    and ties: the same peaks as the reference's whole-map formulation."""
    rng = np.random.default_rng(seed)
    hm = np.zeros((4, h, w), np.float32)
    for k in range(3):
        for _ in range(rng.integers(0, 6)):
            y, x = rng.integers(0, h), rng.integers(0, w)
            if rng.random() < 0.3:  # on a band edge or a map edge
                y = min(h - 1, int(rng.choice([0, 7, 8, 15, 16, h - 1])))
                x = int(rng.choice([0, w - 1, x]))
            hm[k, y, x] = np.round(rng.uniform(0, 1), 1)  # rounding makes plateaus next to a mark
            if rng.random() < 0.5 and x + 1 < w:
                hm[k, y, x + 1] = np.round(rng.uniform(0, 1), 1)
            if rng.random() < 0.5 and y + 1 < h:
                hm[k, y + 1, x] = np.round(rng.uniform(0, 1), 1)
    hm[3] = np.round(rng.uniform(-0.2, 0.4, (h, w)), 1)  # dense: every band active
    got = extract_peaks(hm, threshold=thr, min_dist=0)
    ours = {(k, int(x), int(y)) for k, arr in enumerate(got) for x, y in arr[:, :2]}
    assert ours == _whole_map_peaks(hm, thr)
    np.testing.assert_array_equal(np.concatenate(got)[:, 2], [hm[int(k), int(y), int(x)] for k, x, y in
                                                               sorted(ours, key=lambda t: (t[0], t[1], t[2]))])


def test_peaks_on_larger_sparse_maps_match_reference():
    """Rendered blobs on a 100 x 150 map (several runs of active bands per channel) and an empty
    channel: peaks and their scores as the reference port finds them."""
    rng = np.random.default_rng(5)
    heat, _ = random_maps(rng, 6, 1, 100, 150, blobs=(0, 4))
    heat[2] = 0
    by_type: list = []
    total = 0
    for k in range(6):
        total += ref_extract(heat[k].copy(), by_type, total)
    ours = extract_peaks(heat, num_keypoints=6)
    for k in range(6):
        np.testing.assert_array_equal(ours[k], np.array(by_type[k], dtype=np.float64).reshape(-1, 4))


def test_word_level_candidate_search_equals_whole_map_formulation(monkeypatch):
    """Long runs of active bands locate their candidate cells through 8-byte words of the mask
    (peaks._word_cells). Forced on every run of small maps (any width, so words straddle rows
    and a run's last word is partial), with dense ripples that put several candidates in one word,
    plateaus and marks on row ends: the reference's peaks, and the per-byte search's."""
    import posedata.peaks as G

    calls = []
    word_cells = G._word_cells

    def spy(words, first):
        calls.append(int(np.max((words * np.uint64(0x0102040810204080)) >> np.uint64(56)) if len(words) else 0))
        return word_cells(words, first)

    monkeypatch.setattr(G, "_word_cells", spy)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(1, 40)), int(rng.integers(2, 45))
        yy, xx = np.mgrid[0:h, 0:w]
        hm = np.round(rng.uniform(-0.2, 0.5, (3, h, w)), 1)  # rounding makes plateaus and ties
        hm[1] = 0.12 + 0.3 * (np.sin(xx * 2.9 + seed) * np.cos(yy * 1.7)) ** 2  # peaks 1-2 cells apart
        hm[2, :, -1] = 0.9  # every row end a peak
        hm = hm.astype(np.float32)
        for thr in (0.1, 0.25):
            monkeypatch.setattr(G, "_WORD_SCAN", 0)
            got = extract_peaks(hm, threshold=thr, min_dist=0)
            monkeypatch.setattr(G, "_WORD_SCAN", 1 << 62)
            per_byte = extract_peaks(hm, threshold=thr, min_dist=0)
            assert all(np.array_equal(a, b) for a, b in zip(got, per_byte, strict=True))
            ours = {(k, int(x), int(y)) for k, arr in enumerate(got) for x, y in arr[:, :2]}
            assert ours == _whole_map_peaks(hm, thr)
    # words holding several candidates (a set byte mask that is not a power of two) were decoded
    assert any(m & (m - 1) for m in calls)


@pytest.mark.parametrize("word_scan", [0, 1 << 62])
def test_channels_scanned_whole_equal_whole_map_formulation(monkeypatch, word_scan):
    """After a thresholded channel with nearly every band active, the next channels are scanned
    whole with no threshold pass and the threshold is tested on the candidates left (peaks.
    _DENSE); every _RECHECK-th channel is thresholded again. Forced on every channel after the
    first (and with the word-level or the per-byte search), on maps of any shape: values below
    the threshold with peaks of their own, values exactly at it, plateaus, NaN, channels empty or
    sparse after a dense one: the reference's peaks, and those of the thresholded search."""
    import posedata.peaks as G

    monkeypatch.setattr(G, "_WORD_SCAN", word_scan)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(1, 40)), int(rng.integers(2, 45))
        hm = np.round(rng.uniform(-0.2, 0.5, (9, h, w)), 1)  # rounding makes plateaus and ties
        hm[2] = 0.0
        hm[3] = np.where(rng.random((h, w)) < 0.05, 0.9, 0.05 * rng.random((h, w)))  # sparse
        hm[4] = np.float32(0.1) + np.round(rng.uniform(-1, 1, (h, w))) * 1e-8  # at the threshold
        hm[5] = 0.5 * rng.random((h, w))
        hm[5][rng.random((h, w)) < 0.1] = np.nan
        hm = hm.astype(np.float32)
        for thr in (0.1, 0.25):
            monkeypatch.setattr(G, "_DENSE", 0.0)
            got = extract_peaks(hm, threshold=thr, min_dist=0)
            monkeypatch.setattr(G, "_DENSE", 2.0)
            thresholded = extract_peaks(hm, threshold=thr, min_dist=0)
            assert all(np.array_equal(a, b) for a, b in zip(got, thresholded, strict=True))
            ours = {(k, int(x), int(y)) for k, arr in enumerate(got) for x, y in arr[:, :2]}
            assert ours == _whole_map_peaks(hm, thr)
