"""A synthetic figure's species: everything about a skeleton's figures that does not change from
instance to instance (rest shape, limb lengths and widths, joint limits, marker shapes, stroke
styles), derived from the skeleton's fingerprint only, never from the seed; and its posing.

The rest shape is mirror symmetric under the flip map (see posedata/synth.py's docstring for why):
pairs share marker shape, stroke style and length, and their joint limits mirror each other.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .skeleton import Skeleton

N_MARKERS = 9
N_STYLES = 6


@dataclass(frozen=True)
class Species:
    """Everything about a skeleton's figures that does not change from instance to instance."""

    parent: np.ndarray  # (K,) parent keypoint in the layout tree, -1 for the layout root
    order: tuple[int, ...]  # parents before children
    rel: np.ndarray  # (K,) rest angle of the limb parent->k relative to the parent's own direction
    length: np.ndarray  # (K,) rest length of parent->k, figure units (rest pose extent = 1)
    lo: np.ndarray  # (K,) joint limits relative to rest, radians
    hi: np.ndarray
    width: np.ndarray  # (L,) stroke width at the near end, figure units
    taper: np.ndarray  # (L,) far-end width / near-end width
    style: np.ndarray  # (L,) stroke texture id
    hue: np.ndarray  # (L,) hue offset from the instance's base hue
    near: np.ndarray  # (L,) 0 when the limb is drawn from a to b, 1 when from b to a
    tree: np.ndarray  # (L,) bool: the limb is a layout-tree edge (drawn full width)
    marker: np.ndarray  # (K,) marker shape id
    marker_size: np.ndarray  # (K,) marker radius, figure units
    mirror_instances: bool  # no flip pairs: mirror half the instances


def _adjacency(n: int, limbs: list[tuple[int, int]]) -> list[list[int]]:
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in limbs:
        if b not in adj[a]:
            adj[a].append(b)
            adj[b].append(a)
    return adj


def _depths(adj: list[list[int]], r: int) -> list[int]:
    d = [-1] * len(adj)
    d[r] = 0
    q = deque([r])
    while q:
        k = q.popleft()
        for o in adj[k]:
            if d[o] < 0:
                d[o] = d[k] + 1
                q.append(o)
    return d


def _layout_tree(sk: Skeleton) -> tuple[int, list[int], list[int], list[list[int]]]:
    """A spanning tree of the limbs rooted on the flip axis, with mirrored parents for mirrored
    keypoints, so a symmetric rest shape can be laid out on it. Limbs the file marks redundant
    (fill-only, such as ear-shoulder) are avoided when the rest stays connected."""
    K = sk.num_keypoints
    flip = sk.flip
    main = [lb for i, lb in enumerate(sk.limbs) if i not in sk.forced_redundant]
    adj = _adjacency(K, main)
    if min(_depths(adj, sk.root)) < 0:
        adj = _adjacency(K, list(sk.limbs))
    root = sk.root
    if flip[root] != root:
        centres = [k for k in range(K) if flip[k] == k]
        if centres:
            ecc = {k: max(_depths(adj, k)) for k in centres}
            root = min(centres, key=lambda k: (ecc[k], k))
    depth = _depths(adj, root)
    order = sorted(range(K), key=lambda k: (depth[k], k))
    parent = [-1] * K
    for k in order[1:]:
        cands = sorted(p for p in adj[k] if depth[p] == depth[k] - 1)
        fk = flip[k]
        if fk != k and fk < k and depth[fk] == depth[k] and flip[parent[fk]] in cands:
            parent[k] = flip[parent[fk]]
        else:
            parent[k] = min(cands, key=lambda p: (flip[p] != p, p))
    children: list[list[int]] = [[] for _ in range(K)]
    for k in order[1:]:
        children[parent[k]].append(k)
    return root, order, parent, children


def _rest_angles(sk: Skeleton, root: int, order: list[int], children: list[list[int]]) -> np.ndarray:
    """Absolute rest direction of every limb parent->k (0 = up, +90 deg = image right)."""
    K = sk.num_keypoints
    flip = sk.flip
    sym = any(flip[k] != k for k in range(K))
    theta = np.zeros(K)
    laid: set[int] = set()  # parents whose children are laid out
    deg = np.pi / 180

    bend = np.random.default_rng(int(sk.fingerprint, 16) + 1).uniform(-40, 40, K) * deg

    def fan(n: int, is_root: bool) -> np.ndarray:
        if is_root:
            if n <= 6:
                return np.linspace(-70, 70, n) * deg if n > 1 else np.zeros(1)
            return np.arange(n) * 2 * np.pi / n
        s = min(75.0, 45.0 * (n - 1))  # siblings well apart: arms out, legs down
        return np.linspace(-s, s, n) * deg if n > 1 else np.zeros(1)

    for p in order:
        kids = children[p]
        if not kids:
            continue
        fp = flip[p]
        # the mirror twin of an already laid-out sided parent: mirror its children's directions
        if fp != p and fp in laid and sorted(flip[c] for c in kids) == sorted(children[fp]):
            for c in kids:
                theta[c] = -theta[flip[c]]
            continue
        laid.add(p)
        is_root = p == root
        if not sym or fp != p:
            # a lone child gets the species' rest bend, so chains look like limbs, not rulers
            offs = fan(len(kids), is_root) if len(kids) > 1 or is_root else bend[kids[0]:kids[0] + 1]
            for c, o in zip(kids, offs, strict=True):
                theta[c] = theta[p] + o
            continue
        # a parent on the axis: centre children on the axis, pairs mirrored about it
        centre = [c for c in kids if flip[c] == c]
        pairs = [c for c in kids if flip[c] != c and flip[c] in kids and sk.side(c) == "left"]
        single = [c for c in kids if flip[c] != c and flip[c] not in kids]
        axis = [0.0, np.pi] if is_root else [0.0]
        extra = []
        for j, c in enumerate(centre):
            if j < len(axis):
                theta[c] = theta[p] + axis[j]
            else:
                extra.append(c)
        span = np.pi if is_root else 150 * deg
        for j, c in enumerate(pairs):
            x = span * (j + 1) / (len(pairs) + 1)
            a, b = theta[p] + x, theta[p] - x
            left, right = (a, b) if np.sin(a) < np.sin(b) else (b, a)
            theta[c], theta[flip[c]] = left, right
        # no symmetric place left: spread them off the axis (the shape is then not mirror-exact)
        rest = extra + single
        for c, o in zip(rest, fan(len(rest) + 2, False)[1:-1] if rest else [], strict=True):
            theta[c] = theta[p] + o + np.pi / 2
    return theta


def _spread(rng: np.random.Generator, rep: np.ndarray, n: int) -> np.ndarray:
    """One of n looks per class (a class = a centre part or a mirror pair), every look used before
    any repeats, so neighbouring types differ as often as n allows."""
    _, cls = np.unique(rep, return_inverse=True)
    m = int(cls.max()) + 1 if len(cls) else 0
    looks = np.concatenate([rng.permutation(n) for _ in range(m // n + 1)])[:m]
    return looks[cls] if len(cls) else np.zeros(0, np.int64)


def make_species(sk: Skeleton) -> Species:
    """The skeleton's creature, a pure function of the skeleton's fingerprint."""
    K, L = sk.num_keypoints, sk.num_limbs
    flip = np.asarray(sk.flip)
    rng = np.random.default_rng(int(sk.fingerprint, 16))
    root, order, parent, children = _layout_tree(sk)
    theta = _rest_angles(sk, root, order, children)
    par = np.asarray(parent)
    rel = np.where(par >= 0, theta - theta[np.maximum(par, 0)], 0.0)
    depth = np.zeros(K, dtype=int)
    for k in order[1:]:
        depth[k] = depth[parent[k]] + 1
    rep = np.minimum(np.arange(K), flip)  # one draw per mirror pair
    length = rng.uniform(0.6, 1.3, K)[rep] * 0.88 ** np.maximum(depth - 1, 0)
    lo = -rng.uniform(0.15, 0.75, K)[rep]
    hi = rng.uniform(0.15, 0.75, K)[rep]
    # right members bend as the mirror of their left twins
    is_right = np.array([flip[k] != k and sk.side(k) == "right" for k in range(K)])
    lo, hi = np.where(is_right, -hi, lo), np.where(is_right, -lo, hi)
    centre = flip == np.arange(K)
    if (~centre).any():  # symmetric creatures: joints on the axis bend both ways equally
        a = np.minimum(-lo, hi)
        lo, hi = np.where(centre, -a, lo), np.where(centre, a, hi)
    root_child = par == root
    lo = np.where(root_child, -0.2, lo)
    hi = np.where(root_child, 0.2, hi)
    # normalise so the rest pose's larger extent is 1
    pos = np.zeros((K, 2))
    for k in order[1:]:
        pos[k] = pos[parent[k]] + length[k] * np.array([np.sin(theta[k]), -np.cos(theta[k])])
    extent = max(float(np.ptp(pos[:, 0])), float(np.ptp(pos[:, 1])), 1e-6)
    length = length / extent

    limbs = sk.limbs_array
    pairs = set(map(tuple, np.sort(np.stack([np.arange(K), par], 1)[par >= 0], axis=1).tolist()))
    tree = np.array([tuple(sorted(lb)) in pairs for lb in sk.limbs], dtype=bool)
    # a limb is drawn from its end nearer the layout root, so it tapers outwards
    near = (depth[limbs[:, 0]] > depth[limbs[:, 1]]).astype(np.int64) if L else np.zeros(0, np.int64)
    lrep = np.arange(L)
    for i, (j, _rev) in enumerate(sk.limb_flip):
        if j >= 0:
            lrep[i] = min(i, j)
    far = limbs[np.arange(L), 1 - near] if L else np.zeros(0, np.int64)
    limb_len = length[far] if L else np.zeros(0)
    width = np.where(tree, limb_len * rng.uniform(0.26, 0.38, L)[lrep], 0.0)
    mean_w = float(width[tree].mean()) if tree.any() else 0.05
    width = np.maximum(np.where(tree, width, 0.45 * mean_w), 0.35 * mean_w)
    taper = rng.uniform(0.5, 0.85, L)[lrep]
    style = _spread(rng, lrep, N_STYLES)
    hue = rng.uniform(-0.07, 0.07, L)[lrep]  # a figure keeps one colour family, as clothes do
    marker = _spread(rng, rep, N_MARKERS)
    marker_size = np.maximum(0.62 * mean_w * rng.uniform(0.9, 1.3, K)[rep], 0.03)
    return Species(
        parent=par, order=tuple(order), rel=rel, length=length, lo=lo, hi=hi, width=width, taper=taper,
        style=style, hue=hue, near=near, tree=tree, marker=marker, marker_size=marker_size,
        mirror_instances=not (flip != np.arange(K)).any(),
    )


# ------------------------------------------------------------------- posing
def pose(sp: Species, rng: np.random.Generator, size: float, angle: float, skeleton: Skeleton) -> np.ndarray:
    """(K, 2) keypoint positions in px around the layout root at (0, 0): joint angles within the
    limits, limb lengths within a few percent of the species'."""
    K = len(sp.parent)
    delta = rng.uniform(sp.lo, sp.hi)
    rel = sp.rel + delta
    if sp.mirror_instances and rng.random() < 0.5:
        rel = -rel
    scale = size * rng.uniform(0.92, 1.08, K)
    theta = np.zeros(K)
    pos = np.zeros((K, 2))
    for k in sp.order[1:]:
        p = sp.parent[k]
        theta[k] = (theta[p] if sp.parent[p] >= 0 else angle) + rel[k]
        pos[k] = pos[p] + sp.length[k] * scale[k] * np.array([np.sin(theta[k]), -np.cos(theta[k])])
    for d in skeleton.derived:
        src = [skeleton.index(s) for s in d.mean_of]
        pos[skeleton.index(d.name)] = pos[src].mean(axis=0)
    return pos


def directions(sp: Species, pos: np.ndarray, angle: float) -> np.ndarray:
    """Unit vector of each keypoint's incoming limb (the figure's up for the root); markers are
    oriented by it so they rotate with the figure."""
    par = np.maximum(sp.parent, 0)
    d = pos - pos[par]
    n = np.linalg.norm(d, axis=1, keepdims=True)
    up = np.array([np.sin(angle), -np.cos(angle)])
    return np.where(n > 1e-6, d / np.maximum(n, 1e-6), up)
