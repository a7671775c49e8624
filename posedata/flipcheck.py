"""Is the flip map right? Checks at the level of the data, where a wrong swap list really shows.

Distances are mirror-invariant, so they cannot tell "no swap" from "right swap"; orientation can.
For a triple of keypoints (i, j, k) the sign of the triangle's orientation (a cross product)
flips under a mirror. If the data are as likely to show a pose as its mirror image (the very
assumption flip augmentation makes), then with the right flip map f the mean sign over instances
m(i, j, k) is close to -m(f(i), f(j), f(k)). A missing, extra or wrong pair breaks that for the
triples that involve it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .coco import CategorySpec, Dataset
from .skeleton import Skeleton

FLAG_THRESHOLD = 0.12  # right maps scored 0.04-0.08 on real COCO people; broken pairs 0.13+
Z_THRESHOLD = 1.0  # mean |z| over a keypoint's triples; sampling noise alone gives about 0.5-0.8
MIN_TRIPLE_COUNT = 3  # instances that must label a triple before its mean sign counts
INCONCLUSIVE_BIAS = 0.15  # mean |m| below this: the data show too little orientation bias to judge


@dataclass
class OrientationResult:
    keypoints: list[str]  # skeleton keypoints scored (derived ones excluded)
    scores: np.ndarray  # (K,) mean deviation per keypoint under the given map, NaN if not scored
    identity_scores: np.ndarray  # (K,) the same with no flip map at all, for contrast
    triple_counts: np.ndarray  # (K,) triples that scored each keypoint
    bias: float  # mean |m| over scored triples: how much orientation signal the data carry
    n_instances: int
    z_scores: np.ndarray | None = None  # (K,) mean |z| of the deviations: ~0.8 is sampling noise
    flagged: list[str] = field(default_factory=list)
    inconclusive: str | None = None  # reason, when the data cannot tell

    @property
    def passed(self) -> bool:
        return self.inconclusive is None and not self.flagged


def instance_keypoints(ds: Dataset, sk: Skeleton, category_id: CategorySpec = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Non-crowd instances of the keypoint category in skeleton order: points (N, K, 2), labelled
    (N, K) bool, and the annotations. Derived keypoints are never labelled here."""
    cats = ds.categories_for(category_id, sk)  # several categories share one keypoint list
    cat, ids = cats[0], {c.id for c in cats}
    src = sk.source_index(cat.keypoints)
    anns = [a for a in ds.annotations if a.category_id in ids and not a.iscrowd and a.keypoints is not None
            and len(a.keypoints) == len(cat.keypoints)]
    if not anns:
        return np.zeros((0, sk.num_keypoints, 2)), np.zeros((0, sk.num_keypoints), bool), []
    kp = np.stack([a.keypoints for a in anns])  # (N, Kc, 3)
    take = np.where(src >= 0, src, 0)
    pts = kp[:, take, :2]
    lab = (kp[:, take, 2] > 0) & (src >= 0)[None, :] & np.isfinite(pts).all(-1)
    return pts, lab, anns


def mean_orientation(pts: np.ndarray, lab: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """m[i, j, k] = mean over instances labelling all three of sign(cross(pj - pi, pk - pi)), and
    the counts. cross(i, j, k) = D[j, k] + D[k, i] + D[i, j] with D[a, b] = xa*yb - xb*ya, so one
    (K, K) matrix per instance gives every triple at once."""
    n, k = lab.shape
    s = np.zeros((k, k, k))
    c = np.zeros((k, k, k))
    for a in range(0, n, chunk):
        p = pts[a:a + chunk]
        ok = lab[a:a + chunk]
        # centre each instance on its labelled points: signs are translation-invariant, products are better conditioned
        centre = (np.where(ok[..., None], p, 0).sum(1) / np.maximum(ok.sum(1), 1)[:, None])[:, None, :]
        p = np.where(ok[..., None], p - centre, 0.0)
        x, y = p[..., 0], p[..., 1]
        d = x[:, :, None] * y[:, None, :] - x[:, None, :] * y[:, :, None]  # (n, K, K)
        # cross[n, i, j, k] = D[j, k] + D[k, i] + D[i, j]
        cross = d[:, None, :, :] + np.transpose(d, (0, 2, 1))[:, :, None, :] + d[:, :, :, None]
        both = ok[:, :, None, None] & ok[:, None, :, None] & ok[:, None, None, :]
        s += np.where(both, np.sign(cross), 0).sum(0)
        c += both.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return m, c


def _scores(m: np.ndarray, c: np.ndarray, perm: np.ndarray, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per keypoint: the mean deviation |m(t) + m(f(t))| / 2 over its triples t, the mean of the
    same difference in standard errors (|z|; about 0.8 when only sampling noise separates them),
    and the triple count."""
    k = m.shape[0]
    i, j, q = np.array(list(combinations(range(k), 3)), dtype=np.int64).reshape(-1, 3).T
    fi, fj, fq = perm[i], perm[j], perm[q]
    n1, n2 = c[i, j, q], c[fi, fj, fq]
    ok = (n1 >= min_count) & (n2 >= min_count)
    i, j, q, fi, fj, fq, n1, n2 = (a[ok] for a in (i, j, q, fi, fj, fq, n1, n2))
    m1, m2 = m[i, j, q], m[fi, fj, fq]
    dev = np.abs(m1 + m2) / 2

    def var(mean: np.ndarray, n: np.ndarray) -> np.ndarray:
        p = ((mean + 1) / 2 * n + 1) / (n + 2)  # share of positive signs, with a pseudo-count
        return 4 * p * (1 - p) / n

    z = np.abs(m1 + m2) / np.sqrt(var(m1, n1) + var(m2, n2))
    dev_sum, z_sum, cnt = np.zeros(k), np.zeros(k), np.zeros(k)
    for idx in (i, j, q):
        np.add.at(dev_sum, idx, dev)
        np.add.at(z_sum, idx, z)
        np.add.at(cnt, idx, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(cnt > 0, dev_sum / np.maximum(cnt, 1), np.nan),
                np.where(cnt > 0, z_sum / np.maximum(cnt, 1), np.nan), cnt)


def orientation_check(ds: Dataset, sk: Skeleton, category_id: CategorySpec = None,
                      threshold: float = FLAG_THRESHOLD, min_count: int = MIN_TRIPLE_COUNT) -> OrientationResult:
    """Score every keypoint by how far its triples are from mirror consistency under the flip map."""
    pts, lab, anns = instance_keypoints(ds, sk, category_id)
    derived = set(sk.derived_indices)
    keep = np.array([i for i in range(sk.num_keypoints) if i not in derived])
    names = [sk.keypoints[i] for i in keep]
    pts, lab = pts[:, keep], lab[:, keep]
    # the flip map restricted to the kept keypoints (derived keypoints map among themselves)
    pos = {int(k): n for n, k in enumerate(keep)}
    perm = np.array([pos[int(sk.flip[k])] for k in keep])
    m, c = mean_orientation(pts, lab)
    scores, z, counts = _scores(m, c, perm, min_count)
    id_scores, _, _ = _scores(m, c, np.arange(len(keep)), min_count)
    tri = np.array(list(combinations(range(len(keep)), 3)), dtype=np.int64).reshape(-1, 3).T
    valid = c[tri[0], tri[1], tri[2]] >= min_count
    bias = float(np.abs(m[tri[0], tri[1], tri[2]][valid]).mean()) if valid.any() else 0.0
    res = OrientationResult(names, scores, id_scores, counts, bias, len(anns), z_scores=z)
    if not valid.any():
        res.inconclusive = f"no keypoint triple is labelled in {min_count}+ instances ({len(anns)} instances)"
    elif bias < INCONCLUSIVE_BIAS or np.nanmean(id_scores) < threshold:
        res.inconclusive = (f"the data show too little orientation bias (mean |orientation| {bias:.2f}; even no flip map "
                            f"scores {np.nanmean(id_scores):.2f}): as many instances face one way as the other, so "
                            "orientation cannot tell a right swap list from a wrong one")
    else:
        # flagged: beyond the threshold AND beyond sampling noise (few instances make m noisy)
        res.flagged = [names[i] for i in range(len(names))
                       if np.isfinite(scores[i]) and scores[i] > threshold and z[i] > Z_THRESHOLD]
    return res


def side_statistics(ds: Dataset, sk: Skeleton, category_id: CategorySpec = None) -> list[dict]:
    """Per flip pair: over instances labelling both, the signed horizontal offset of the left point
    from the right one as a fraction of the instance's keypoint extent; an annotator who swaps
    sides shows up as an outlier against the pair's majority."""
    pts, lab, anns = instance_keypoints(ds, sk, category_id)
    xs = np.where(lab, pts[..., 0], np.nan)
    with warnings.catch_warnings():  # instances with no labelled point give all-NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        width = np.maximum(np.nan_to_num(np.nanmax(xs, 1) - np.nanmin(xs, 1)), 1.0) if len(pts) else np.zeros(0)
    out = []
    for a, b in sk.flip_pairs():
        ia, ib = sk.index(a), sk.index(b)
        both = lab[:, ia] & lab[:, ib]
        if sk.side(ia) == "right":
            ia, ib, a, b = ib, ia, b, a
        off = (pts[both, ia, 0] - pts[both, ib, 0]) / width[both]
        ids = [anns[n].id for n in np.flatnonzero(both)]
        out.append({
            "left": a, "right": b, "n": int(both.sum()),
            "left_of_right": float((off < 0).mean()) if both.any() else float("nan"),
            "offsets": off, "annotation_ids": ids,
        })
    return out


def minority_pairs(x: np.ndarray, lab: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The "suspected left/right swap" rule, shared by validate (V070) and flipcheck's plots.

    x, lab: (N, K) x coordinates and labelled flags; left, right: (P,) keypoint columns of the flip
    pairs. Per instance every pair's sign of x_left - x_right should agree on which way the
    instance faces. Returns ((N, P) pairs against a clear majority, (N,) majority size). A pair
    nearly level in x (a side view) says nothing; only a clear majority (2+ pairs, 2:1 or more)
    says which way the instance faces, so a twisting body (3:2) is not flagged."""
    both = lab[:, left] & lab[:, right]
    d = x[:, left] - x[:, right]
    xs = np.where(lab, x, np.nan)
    with warnings.catch_warnings():  # instances with no labelled point give all-NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        extent = np.nanmax(xs, axis=1) - np.nanmin(xs, axis=1) if xs.shape[1] else np.zeros(len(x))
    tol = np.maximum(1.0, 0.05 * np.nan_to_num(extent))[:, None]
    pos = both & (d > tol)
    neg = both & (d < -tol)
    npos, nneg = pos.sum(axis=1), neg.sum(axis=1)
    minority = np.where((npos > nneg)[:, None], neg, np.where((nneg > npos)[:, None], pos, False))
    major, minor = np.maximum(npos, nneg), np.minimum(npos, nneg)
    minority &= ((major >= 2) & (major >= 2 * minor))[:, None]
    return minority, major


def suspected_swaps(pts: np.ndarray, lab: np.ndarray, sk: Skeleton) -> np.ndarray:
    """(N, P) bool over sk.flip_pairs(): the pair disagrees with its instance's facing (minority_pairs)."""
    pairs = [(sk.index(a), sk.index(b)) if sk.side(sk.index(a)) != "right" else (sk.index(b), sk.index(a))
             for a, b in sk.flip_pairs()]
    if not pairs or not len(pts):
        return np.zeros((len(pts), len(pairs)), dtype=bool)
    left, right = np.array(pairs).T
    return minority_pairs(pts[..., 0], lab, left, right)[0]


def instance_crops(ds: Dataset, sk: Skeleton, images_root, anns: list, pts: np.ndarray, lab: np.ndarray,
                   chosen: list[int], margin: float = 0.15) -> list[dict]:
    """Image crops around chosen instances with their keypoints in crop coordinates."""
    from .errors import InputError
    from .images import read_image
    from .io import safe_image_path

    images = ds.image_index()
    out = []
    for n in chosen:
        a = anns[n]
        im = images.get(a.image_id)
        if im is None:
            continue
        try:
            p = safe_image_path(images_root, im.file_name)
        except InputError as e:
            raise InputError(e.message, file=ds.file, where=f"images (id {im.id}).file_name") from None
        img = read_image(p)  # refuses a header that claims a huge size before decoding
        q = pts[n][lab[n]]
        if not len(q):
            continue
        x0, y0 = q.min(0)
        x1, y1 = q.max(0)
        mx, my = (x1 - x0) * margin + 10, (y1 - y0) * margin + 10
        xa, ya = int(max(0, x0 - mx)), int(max(0, y0 - my))
        xb, yb = int(min(img.shape[1], x1 + mx + 1)), int(min(img.shape[0], y1 + my + 1))
        if xb <= xa or yb <= ya:
            continue
        out.append({"crop": img[ya:yb, xa:xb], "points": pts[n] - [xa, ya], "labelled": lab[n],
                    "title": f"annotation {a.id} (image {a.image_id})"})
    return out


def skeleton_flip_property(sk: Skeleton, seed: int = 0, trials: int = 4, size: int = 128,
                           stride: int = 8) -> list[tuple[str, str, bool]]:
    """Render targets for random instances, and for the same instances mirrored with the flip map
    applied; per keypoint and per limb, PASS when the flipped sample's targets equal the flipped
    targets of the original. Heatmaps mirror exactly (cell centres are symmetric under
    x -> w - 1 - x). PAF cells sit on a grid that is not symmetric under that map, so for limbs the
    check is on the field's value: wherever both maps are non-zero the vectors must be equal,
    and the mirror limb must exist. One instance per trial, so no overwrite order interferes.
    Any involution passes: this proves internal consistency only."""
    from .targets import flip_targets, render_heatmaps, render_pafs

    rng = np.random.default_rng(seed)
    k = sk.num_keypoints
    mh = mw = size // stride
    limbs = sk.limbs_array
    kp_ok = np.array([sk.flip[sk.flip[i]] == i for i in range(k)])
    limb_ok = np.array([j >= 0 for j, _ in sk.limb_flip])
    limb_seen = np.zeros(sk.num_limbs, bool)
    for _ in range(trials):
        kp = np.zeros((1, k, 3), np.float32)
        kp[..., :2] = rng.uniform(8, size - 9, (1, k, 2))
        kp[..., 2] = 1
        fkp = np.empty_like(kp)
        fkp[:, list(sk.flip)] = kp  # point i of the original carries label flip[i] after the flip
        fkp[..., 0] = size - 1 - fkp[..., 0]
        hm, paf = render_heatmaps(kp, mh, mw, stride), render_pafs(kp, limbs, mh, mw, stride)
        fhm, fpaf = render_heatmaps(fkp, mh, mw, stride), render_pafs(fkp, limbs, mh, mw, stride)
        ehm, epaf = flip_targets(hm, paf, sk)
        kp_ok &= np.abs(fhm[:k] - ehm[:k]).reshape(k, -1).max(1) <= 1e-5
        for li in range(sk.num_limbs):
            got, exp = fpaf[2 * li:2 * li + 2], epaf[2 * li:2 * li + 2]
            both = (np.abs(got).sum(0) > 0) & (np.abs(exp).sum(0) > 0)
            limb_seen[li] |= bool(both.any())
            if both.any() and not np.allclose(got[:, both], exp[:, both], atol=1e-5):
                limb_ok[li] = False
    out = [("keypoint", name, bool(kp_ok[i])) for i, name in enumerate(sk.keypoints)]
    out += [("limb", "-".join(sk.limb_names(li)), bool(limb_ok[li] and limb_seen[li])) for li in range(sk.num_limbs)]
    return out
