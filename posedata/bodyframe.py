"""The flip map's data-level test in each instance's own body frame (maps with left/right pairs).

Flip augmentation assumes an instance P and g(P), its mirror image relabelled by the flip map f, are
equally likely. Any feature h with h(g(P)) = -h(P) is then as likely negated, and flipping the signs
of whole instances at random is an exact test (flipcheck._flip_test's reasoning).

The features here live in a frame built from the map's own pairs, per instance: the lateral axis
points from the right member of a pair to its left one (averaged over the labelled pairs, all
oriented alike), the long axis is perpendicular to it, the origin is the centroid, the unit the
instance's spread. A keypoint's lateral coordinate l_i and long coordinate u_i then obey
l_i(gP) = -l_f(i)(P) and u_i(gP) = u_f(i)(P), so for every orbit of f (a pair or a keypoint mapped to
itself):

- lateral: the mean of l over the orbit (a pair's members lie at opposite sides: ~0; an unpaired
  keypoint should sit on the midline: ~0); a missing pair leaves each knee on its own side;
- long: u_left - u_right of a pair (mirror partners sit at the same height along the body); a
  knee<->ankle pairing differs by a shank;

and, because a wrong map shows in BOTH members of a missing or crossed pair, the sum and the
difference of two orbits' features of one kind (instances labelling both): the two unpaired knees
lie at opposite sides, two crossed eye<->ear pairs are offset in opposite directions, and in their
difference the midline's own error cancels. A keypoint's orbit is compared with its NEAR nearest
orbits only (keeps the count of features, and so the multiplicity, linear in the keypoints).
The statistic combines the largest z^2 = (sum over instances)^2 / (sum of squares) over the features
with the largest per-orbit group score (a ridge Hotelling statistic of the features that involve the
orbit), as the smaller of their randomisation p-values (flip_test).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

EXACT_UP_TO = 12  # informative instances up to which the randomisation test enumerates all 2^n sign patterns
NEAR_K = 3  # keypoints each keypoint's distances are compared to (nearest on average)
NEAR = 6  # orbits each orbit is compared with (nearest by mean distance in the body frame)


def centred(pts: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) each instance's labelled points about their centroid (0 where unlabelled) and (N,)
    their mean squared distance from it: the square of the instance's spread, the scale every
    per-instance comparison (flip test, swap geometry, skeleton init's distances) divides by. The
    callers floor it as their own degenerate cases need."""
    cnt = np.maximum(lab.sum(1), 1)
    centre = np.where(lab[..., None], pts, 0.0).sum(1) / cnt[:, None]
    q = np.where(lab[..., None], pts - centre[:, None], 0.0)
    return q, (q ** 2).sum(-1).sum(1) / cnt


def orbits(perm: np.ndarray) -> list[tuple[int, ...]]:
    """The orbits of an involution: (i,) for a keypoint mapped to itself, (i, f(i)) for a pair."""
    out, seen = [], set()
    for i in range(len(perm)):
        if i not in seen:
            o = (i,) if perm[i] == i else (i, int(perm[i]))
            seen.update(o)
            out.append(o)
    return out


def _body_frame(pts: np.ndarray, lab: np.ndarray, orb: list[tuple[int, ...]]) -> tuple[np.ndarray, ...]:
    """Each instance in its own frame: (q centred points, spread, ok where a lateral axis exists,
    full (N, O) orbits labelled whole, mid (N, O, 2) orbit midpoints, ell and u (N, K) lateral and
    long coordinates in units of the spread)."""
    k = lab.shape[1]
    pairs = [o for o in orb if len(o) == 2]
    q, mean_sq = centred(pts, lab)
    spread = np.sqrt(np.maximum(mean_sq, 1e-18))
    left, right = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    both = lab[:, left] & lab[:, right]
    off = np.where(both[..., None], q[:, left] - q[:, right], 0.0)  # (N, P, 2)
    # orient the pairs alike: by the leading eigenvector of their offsets' inner products summed over
    # instances, which g leaves unchanged (so the orientation is the same for P and g(P))
    gram = np.einsum("npx,nqx->pq", off, off)
    lead = np.linalg.eigh(gram)[1][:, -1]
    sgn = np.where(lead >= 0, 1.0, -1.0)
    lat = (off * sgn[None, :, None]).sum(1)
    norm = np.linalg.norm(lat, axis=1)
    ok = norm > 1e-9 * spread
    lat = lat / np.maximum(norm, 1e-300)[:, None]
    up = np.stack([-lat[:, 1], lat[:, 0]], 1)  # g maps it to its mirror image, as it should a body's long axis
    # the long axis must not turn with the facing: point it to the skeleton's low-index end
    # (orbit midpoints weighted by their place in the keypoint order; g leaves the weights alone)
    full = np.stack([lab[:, list(o)].all(1) & ok for o in orb], 1)  # (N, O)
    mid = np.stack([q[:, list(o)].mean(1) for o in orb], 1) * full[..., None]
    weight = np.array([(k - 1) / 2 - np.mean(o) for o in orb])
    toward = np.einsum("nox,o->nx", mid, weight)
    up = up * np.where(np.einsum("nx,nx->n", up, toward) >= 0, 1.0, -1.0)[:, None]
    ell = np.einsum("nkx,nx->nk", q, lat) / spread[:, None]
    u = np.einsum("nkx,nx->nk", q, up) / spread[:, None]
    return q, spread, ok, full, mid, ell, u


def _near_orbits(full: np.ndarray, mid: np.ndarray, spread: np.ndarray, near: int) -> list[tuple[int, int]]:
    """Pairs of orbits (a < b), each orbit with its `near` nearest by mean midpoint distance."""
    o = full.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cen = np.where(full[..., None], mid, np.nan) / spread[:, None, None]
        dist = np.array([[np.nanmean(np.linalg.norm(cen[:, a] - cen[:, b], axis=-1)) if (full[:, a] & full[:, b]).any()
                          else np.inf for b in range(o)] for a in range(o)])
    chosen = set()
    for a in range(o):
        for b in [int(b) for b in np.argsort(dist[a]) if b != a][:near]:
            chosen.add((min(a, b), max(a, b)))
    return sorted(chosen)


def _distance_features(pts: np.ndarray, lab: np.ndarray, perm: np.ndarray, spread: np.ndarray, near_k: int,
                       add: Callable[[np.ndarray, list[int], str], None]) -> None:
    """Distances to near keypoints: |p_i - p_j| - |p_f(i) - p_f(j)| (a mirror keeps distances, so
    only the relabelling moves them): a wrist left unpaired stays a forearm from its own elbow, not
    from the other; needs no axis, so it also holds in side views."""
    k = lab.shape[1]
    dk = np.linalg.norm(pts[:, :, None] - pts[:, None, :], axis=-1) / spread[:, None, None]
    both_k = lab[:, :, None] & lab[:, None, :]
    with warnings.catch_warnings():  # a keypoint pair never labelled together: no mean, never near
        warnings.simplefilter("ignore", RuntimeWarning)
        md = np.where(both_k.any(0), np.nanmean(np.where(both_k, dk, np.nan), 0), np.inf)
    md = md + md[perm][:, perm]  # symmetrised under the map, so g leaves the choice alone
    seen = set()
    for i in range(k):
        for j in [int(j) for j in np.argsort(md[i]) if j != i][:near_k]:
            a, b = sorted((i, j))
            fa, fb = sorted((int(perm[a]), int(perm[b])))
            if (a, b) == (fa, fb) or (fa, fb) in seen or (a, b) in seen:
                continue  # the pair is its own image: the feature is 0 by construction
            seen.add((a, b))
            defined = lab[:, a] & lab[:, b] & lab[:, fa] & lab[:, fb]
            add(np.where(defined, np.nan_to_num(dk[:, a, b] - dk[:, fa, fb]), 0.0), [a, b, fa, fb],
                f"distance {(a, b)} - {(fa, fb)}")


def frame_features(pts: np.ndarray, lab: np.ndarray, perm: np.ndarray,
                   near: int = NEAR, near_k: int = NEAR_K) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, C) features (0 where undefined), (C, K) keypoints each feature involves, and their names.
    perm must have at least one pair (without pairs there is no lateral axis)."""
    k = lab.shape[1]
    orb = orbits(perm)
    q, spread, ok, full, mid, ell, u = _body_frame(pts, lab, orb)
    lat_o = np.stack([np.where(full[:, j], ell[:, list(o)].mean(1), 0.0) for j, o in enumerate(orb)], 1)
    long_o = np.stack([np.where(full[:, j], u[:, o[0]] - u[:, o[-1]], 0.0) for j, o in enumerate(orb)], 1)
    paired = np.array([len(o) == 2 for o in orb])
    cols, touch, names = [], [], []

    def add(col: np.ndarray, members: list[int], name: str) -> None:
        cols.append(col)
        t = np.zeros(k, bool)
        t[members] = True
        touch.append(t)
        names.append(name)

    for j, o in enumerate(orb):
        add(lat_o[:, j], list(o), f"lateral {o}")
        if paired[j]:
            add(long_o[:, j], list(o), f"long {o}")
    for a, b in _near_orbits(full, mid, spread, near):
        jointly = full[:, a] & full[:, b]
        members = list(orb[a]) + list(orb[b])
        for s, word in ((1.0, "+"), (-1.0, "-")):
            add(np.where(jointly, lat_o[:, a] + s * lat_o[:, b], 0.0), members, f"lateral {orb[a]} {word} {orb[b]}")
            if paired[a] and paired[b]:
                add(np.where(jointly, long_o[:, a] + s * long_o[:, b], 0.0), members, f"long {orb[a]} {word} {orb[b]}")
    _distance_features(pts, lab, perm, spread, near_k, add)
    x = np.stack(cols, 1)
    return np.where(ok[:, None], x, 0.0), np.stack(touch, 0), names


def max_z2(sums: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(..., C) sums over instances -> (...,) the largest z^2 = sum^2 / (sum of squares)."""
    return np.where(m > 1e-12, sums ** 2 / np.maximum(m, 1e-12), 0.0).max(-1)


RIDGE = 1.0  # a group's Hotelling statistic uses M + RIDGE * diag(M): halfway to the sum of its z^2


def group_scores(v: np.ndarray, sums: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(B, C) sums over instances -> (B, G) per group of features (an orbit's: every feature that
    involves it) a ridge Hotelling statistic s' (M + RIDGE diag M)^-1 s, M the group's sum of
    outer products over instances (which sign flips leave alone), standardised by its exact mean
    and its Gaussian-approximate spread under the flips: (t - tr(AM)) / sqrt(2 tr(AMAM)). One wrong
    map entry moves several features a little, each defined on its own subset of instances (the
    crossed eye<->ear pairs: eight features, ~15-30 of 50 instances each); summed along the
    direction the data give they say more than any single one."""
    out = np.full((len(sums), len(groups)), -np.inf)
    for j, g in enumerate(groups):
        idx = np.flatnonzero(g)
        if not len(idx):
            continue
        m0 = v[:, idx].T @ v[:, idx]
        a = np.linalg.inv(m0 + RIDGE * np.diag(np.diag(m0)))
        am = a @ m0
        s = sums[:, idx]
        out[:, j] = (np.einsum("bi,ij,bj->b", s, a, s) - np.trace(am)) / np.sqrt(max(2 * (am * am.T).sum(), 1e-300))
    return out


def _rank_p(x: np.ndarray) -> np.ndarray:
    """Per member of x, the share of members at least as large (ties count)."""
    return (len(x) - np.searchsorted(np.sort(x), x - 1e-9, side="left")) / len(x)


def flip_test(v: np.ndarray, active: np.ndarray, rng: np.random.Generator, flips: int,
              groups: np.ndarray | None = None) -> float:
    """Randomisation p-value over the active columns of v, by random sign flips of whole instances.

    The statistic combines two: the largest z^2 over the features (a wrong entry that moves one
    feature a lot) and the largest group score (group_scores: one that moves several a little),
    as the smaller of their two randomisation p-values (min-p). Both p-values are ranks among the
    data and its flipped copies, so the combination is again a statistic of exchangeable members:
    its rank among them is uniform under the null, and the test stays exact (the data counted
    among the flips: p >= 1 / (flips + 1)). Up to EXACT_UP_TO informative instances every sign
    pattern is a member, so fewer than 11 instances never FAIL (p >= 2 / 2^n)."""
    v = v[:, active]
    if not v.shape[1]:
        return 1.0
    groups = groups[:, active] if groups is not None else np.zeros((0, v.shape[1]), bool)
    groups = groups[groups.any(1)]
    m = (v ** 2).sum(0)
    rows = np.flatnonzero((v != 0).any(1))
    if len(rows) <= EXACT_UP_TO:
        eps = 1.0 - 2.0 * ((np.arange(2 ** len(rows))[:, None] >> np.arange(len(rows))) & 1)
        sums = eps @ v[rows]  # pattern 0 (all +1) is the data
    else:
        sums = np.concatenate([v.sum(0)[None]] + [rng.choice((-1.0, 1.0), size=(min(2000, flips - b), len(v))) @ v
                                                   for b in range(0, flips, 2000)])  # (flips + 1, C), eps in batches
    p = _rank_p(max_z2(sums, m))
    if len(groups):
        p = np.minimum(p, _rank_p(group_scores(v, sums, groups).max(1)))
    return float((p <= p[0] + 1e-12).mean())


def culprit(v: np.ndarray, active: np.ndarray, touch: np.ndarray, orb: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The orbit the evidence points at: among the orbits of the strongest feature, the one whose
    own features (those about that orbit alone: its lateral and long offsets) deviate most. The
    strongest feature may compare a broken orbit with a right one (a crossed eye<->ear pair against
    the nose, a wrist left unpaired against the elbows); the right one's own offsets are noise."""
    m = (v ** 2).sum(0)
    live = active & (m > 1e-12)
    z2 = np.where(live, v.sum(0) ** 2 / np.maximum(m, 1e-12), 0.0)
    top = int(np.argmax(np.where(live, z2, -1.0)))
    cands = [o for o in orb if touch[top, list(o)].any()]
    own = []
    for o in cands:
        ind = np.zeros(touch.shape[1], bool)
        ind[list(o)] = True
        own.append(float(np.max(z2[live & (touch == ind).all(1)], initial=0.0)))
    return cands[int(np.argmax(own))]
