"""Synthetic COCO keypoint data: drawn articulated figures for any skeleton file.

The data exists to prove the whole path (targets, flip, grouping, training) on a machine with no
download, so it must be learnable by a small CPU model and must not teach anything a flip-aware
trainer would contradict. Design decisions, and why:

- A "species" (rest shape, limb lengths and widths, joint limits, marker shapes, stroke styles) is
  derived from the skeleton's fingerprint only, never from the seed: a training set and a held-out
  set generated with different seeds show the same creature.
- Identity comes from shape and pattern, not from a pixel colour: every keypoint type has a marker
  shape and every limb type a stroke texture, while colours are drawn per instance (limb hues keep a
  fixed offset from the instance's base hue, so colour relations carry a little information).
- Left and right: horizontal-flip augmentation mirrors an image and swaps the flip pairs' labels.
  A chiral cue (say, a dot on every left limb) would therefore sit on "left" in half the samples and
  on "right" in the other half. What survives the flip is a figure whose rest shape is mirror
  symmetric under the flip map, seen always from the same side: the left member of every pair sits
  on the image's left of the body axis (as a creature seen from behind or from above), pairs share
  marker shape, stroke style and length, and their joint limits mirror each other. The generator's
  distribution is then invariant under "mirror the image and swap the labels", and the side is
  learnable from the body frame (the axis' two ends look different), as with real people.
  Skeletons without flip pairs (a hand) are instead mirrored per instance at random, so both
  chiralities occur, as left and right hands do.
- Occluded keypoints (covered by a later figure or an occluder) are v=1, out-of-frame ones v=0
  with x = y = 0; derived keypoints (openpose18's neck) are drawn at the mean of their sources and
  left out of the JSON, which carries the skeleton's coco_keypoints.
- area is the bbox area by default: the reference selects training samples by area (>= 32 x 32),
  and a stick figure's silhouette is far thinner than a person's. For evaluation that makes OKS
  lenient (a box holds much more than a figure), so a held-out set meant for measuring AP is
  written with area="silhouette": the figure's drawn pixels, as COCO's area is a person's segment.
- Coordinates follow COCO's continuous convention (pixel i covers [i, i + 1)); drawing uses OpenCV's
  pixel-centre convention, hence the +0.5 when writing.
"""
from __future__ import annotations

import json
import math
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .io import check_replaceable, replace_dir, staging_dir, write_error
from .skeleton import Skeleton

GENERATOR = "posedata synth 1"
COMMAND = "synth"  # the name in the marker of the folders it makes (io.MARKER)
SHIFT = 4  # OpenCV fixed-point drawing: coordinates in 1/16 px
ONE = 1 << SHIFT
N_MARKERS = 9
N_STYLES = 6
OCCLUDER_ID = 255
MAX_FIGURES = 6
MIN_SIZE, MAX_SIZE = 32, 4096


# ------------------------------------------------------------------ species
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


# ------------------------------------------------------------------ drawing
def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] to BGR in [0, 255], vectorised."""
    h = np.mod(h, 1.0) * 6
    i = np.floor(h).astype(int) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([b, g, r], -1) * 255


def _fx(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p, dtype=np.float64) * ONE).astype(np.int32)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * ONE)), int(round(float(p[1]) * ONE))


# Drawing works on plain float tuples: a figure is dozens of tiny primitives, and NumPy's per-call
# overhead on 2-vectors would cost more than the drawing itself.
Pt = tuple[float, float]
Col = tuple[float, float, float]


def _q(x: float, y: float) -> tuple[int, int]:
    return int(round(x * ONE)), int(round(y * ONE))


class _Painter:
    """Draws on the image (anti-aliased) and, for silhouettes, on a mask."""

    def __init__(self, img: np.ndarray, mask: np.ndarray | None) -> None:
        import cv2

        self.cv2 = cv2
        self.img = img
        self.mask = mask

    def poly(self, pts: list[Pt], color: Col, to_mask: bool = True) -> None:
        q = np.array([_q(x, y) for x, y in pts], dtype=np.int32)
        self.cv2.fillConvexPoly(self.img, q, color, self.cv2.LINE_AA, SHIFT)
        if to_mask and self.mask is not None:
            self.cv2.fillConvexPoly(self.mask, q, 255, self.cv2.LINE_8, SHIFT)

    def disc(self, c: Pt, r: float, color: Col, thickness: int = -1, to_mask: bool = True) -> None:
        rr = max(int(round(r * ONE)), ONE // 2)
        cq = _q(*c)
        self.cv2.circle(self.img, cq, rr, color, thickness, self.cv2.LINE_AA, SHIFT)
        if to_mask and self.mask is not None:
            self.cv2.circle(self.mask, cq, rr, 255, -1, self.cv2.LINE_8, SHIFT)

    def line(self, a: Pt, b: Pt, color: Col, th: float) -> None:
        self.cv2.line(self.img, _q(*a), _q(*b), color, max(1, int(round(th))), self.cv2.LINE_AA, SHIFT)


def _at(p: Pt, u: Pt, s: float, nv: Pt, t: float) -> Pt:
    """p + s*u + t*nv"""
    return p[0] + s * u[0] + t * nv[0], p[1] + s * u[1] + t * nv[1]


def _limb(pt: _Painter, a: Pt, b: Pt, wa: float, wb: float, style: int, c1: Col, c2: Col) -> None:
    """A tapered stroke from a (width wa) to b (width wb) with rounded ends and a texture."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    n_len = math.hypot(dx, dy)
    if n_len < 1e-3:
        pt.disc(a, wa / 2, c1)
        return
    u = (dx / n_len, dy / n_len)
    nv = (-u[1], u[0])

    def quad(sa: float, sb: float) -> list[Pt]:
        return [_at(a, u, 0, nv, sa / 2), _at(b, u, 0, nv, sb / 2), _at(b, u, 0, nv, -sb / 2),
                _at(a, u, 0, nv, -sa / 2)]

    if style == 3:  # outlined: contrasting rim, coloured core
        pt.poly(quad(wa, wb), c2)
        pt.disc(a, wa / 2, c2)
        pt.disc(b, wb / 2, c2)
        pt.poly(quad(wa * 0.5, wb * 0.5), c1, to_mask=False)
        return
    pt.poly(quad(wa, wb), c1)
    pt.disc(a, wa / 2, c1)
    pt.disc(b, wb / 2, c1)
    wmin = min(wa, wb)
    if style == 1:  # bands across
        step = max(3.0, 1.1 * wmin)
        for t in np.arange(step * 0.6, n_len - step * 0.3, step).tolist():
            h = (wa + (wb - wa) * t / n_len) / 2 * 0.95
            pt.line(_at(a, u, t, nv, -h), _at(a, u, t, nv, h), c2, max(1.0, step / 3))
    elif style == 2:  # centre line
        pt.line(a, b, c2, max(1.0, wmin / 3))
    elif style == 4:  # dots along
        step = max(3.0, 1.4 * wmin)
        for t in np.arange(step * 0.5, n_len, step).tolist():
            h = (wa + (wb - wa) * t / n_len) / 2
            pt.disc(_at(a, u, t, nv, 0), max(0.8, h * 0.45), c2, to_mask=False)
    elif style == 5:  # two rails
        for s in (-1, 1):
            pt.line(_at(a, u, 0, nv, s * wa * 0.28), _at(b, u, 0, nv, s * wb * 0.28), c2, max(1.0, wmin / 5))


def _marker(pt: _Painter, p: Pt, u: Pt, r: float, shape: int, mc: Col, bg: Col) -> None:
    """A keypoint marker oriented by u and symmetric about it (so a mirrored marker is the same
    marker): the shape tells keypoint types apart."""
    nv = (-u[1], u[0])
    th = max(1.0, r / 2.5)
    if shape == 0:
        pt.disc(p, r, mc)
    elif shape == 1:
        pt.disc(p, r, bg)
        pt.disc(p, r * 0.8, mc, thickness=max(1, int(round(th))), to_mask=False)
    elif shape == 2:
        s = r * 0.85
        pt.poly([_at(p, u, s, nv, s), _at(p, u, s, nv, -s), _at(p, u, -s, nv, -s), _at(p, u, -s, nv, s)], mc)
    elif shape == 3:
        pt.poly([_at(p, u, r * 1.15, nv, 0), _at(p, u, 0, nv, r * 0.8), _at(p, u, -r * 1.15, nv, 0),
                 _at(p, u, 0, nv, -r * 0.8)], mc)
    elif shape == 4:
        pt.poly([_at(p, u, r * 1.2, nv, 0), _at(p, u, -r * 0.6, nv, r), _at(p, u, -r * 0.6, nv, -r)], mc)
    elif shape == 5:
        pt.disc(p, r, bg)
        for s in (1, -1):
            pt.line(_at(p, u, r * 0.6, nv, s * r * 0.6), _at(p, u, -r * 0.6, nv, -s * r * 0.6), mc, th)
    elif shape == 6:
        pt.disc(p, r, bg)
        pt.line(_at(p, u, r * 0.9, nv, 0), _at(p, u, -r * 0.9, nv, 0), mc, th)
        pt.line(_at(p, u, 0, nv, r * 0.9), _at(p, u, 0, nv, -r * 0.9), mc, th)
    elif shape == 7:
        pt.disc(p, r, mc)
        pt.disc(p, r * 0.42, bg, to_mask=False)
    else:
        a, b = r * 1.1, r * 0.4
        pt.poly([_at(p, u, b, nv, a), _at(p, u, b, nv, -a), _at(p, u, -b, nv, -a), _at(p, u, -b, nv, a)], mc)


def draw_figure(img: np.ndarray, mask: np.ndarray | None, sp: Species, sk: Skeleton, pos: np.ndarray,
                angle: float, size: float, rng: np.random.Generator, min_px: float = 1.6) -> None:
    """Limbs in a random depth order, then every joint's marker on top (a joint is never hidden
    by its own limbs, so its visibility is decided by other figures and occluders only)."""
    pt = _Painter(img, mask)
    L = sk.num_limbs
    base = rng.random()
    sat = rng.uniform(0.45, 1.0)
    val = rng.uniform(0.45, 1.0)
    c1 = _hsv(base + sp.hue + rng.normal(0, 0.015, L), np.full(L, sat), np.clip(val + rng.normal(0, 0.05, L), 0.3, 1))
    dark = val > 0.62
    c2 = _hsv(base + sp.hue + 0.5, np.full(L, rng.uniform(0.2, 0.8)), np.full(L, 0.15 if dark else 0.95))
    mc = _hsv(np.array([base + rng.uniform(0.3, 0.7)]), np.array([rng.uniform(0.0, 0.6)]),
              np.array([0.1 if not dark else 0.97]))[0]
    mbg = _hsv(np.array([base]), np.array([sat]), np.array([0.95 if not dark else 0.12]))[0]
    wscale = size * rng.uniform(0.85, 1.15)
    limbs = sk.limbs_array
    ends = np.where(sp.near[:, None] == 1, limbs[:, ::-1], limbs)
    wa = np.maximum(min_px, sp.width * wscale)
    wb = np.where(sp.tree, np.maximum(min_px * 0.8, wa * sp.taper), wa)
    style = np.where(sp.tree, sp.style, 0)
    P = [tuple(p) for p in pos.tolist()]
    c1l, c2l = [tuple(c) for c in c1.tolist()], [tuple(c) for c in c2.tolist()]
    wal, wbl = wa.tolist(), wb.tolist()
    for i in rng.permutation(L).tolist():
        a, b = ends[i]
        _limb(pt, P[a], P[b], wal[i], wbl[i], int(style[i]), c1l[i], c2l[i])
    u = directions(sp, pos, angle).tolist()
    r = np.maximum(min_px, sp.marker_size * wscale).tolist()
    mcol, bcol = tuple(mc.tolist()), tuple(mbg.tolist())
    for k in range(sk.num_keypoints):
        _marker(pt, P[k], tuple(u[k]), r[k], int(sp.marker[k]), mcol, bcol)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields plus blotchy texture plus a few distractor shapes and strokes."""
    import cv2

    g = int(rng.integers(2, 6))
    bg = cv2.resize(rng.uniform(0, 255, (g, g, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grey = bg.mean(axis=2, keepdims=True)
    bg = grey + (bg - grey) * rng.uniform(0.15, 0.6)  # muted: the figures, not the backdrop, carry colour
    cell = int(rng.integers(3, 14))
    tex = rng.normal(0, rng.uniform(4, 28), (h // cell + 2, w // cell + 2, 3)).astype(np.float32)
    bg += cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
    img = np.clip(bg, 0, 255).astype(np.uint8)
    m = min(h, w)
    for _ in range(int(rng.integers(1, 7))):
        col = tuple(float(x) for x in rng.uniform(0, 255, 3))
        kind = int(rng.integers(0, 4))
        c = (int(rng.uniform(0, w) * ONE), int(rng.uniform(0, h) * ONE))
        if kind == 0:  # stroke-like line: the figure's limbs are not the only thick lines
            e = (int(rng.uniform(0, w) * ONE), int(rng.uniform(0, h) * ONE))
            cv2.line(img, c, e, col, int(rng.integers(1, max(2, m // 25))), cv2.LINE_AA, SHIFT)
        elif kind == 1:
            cv2.circle(img, c, int(rng.uniform(0.02, 0.12) * m * ONE), col, int(rng.choice([-1, 1, 2])),
                       cv2.LINE_AA, SHIFT)
        elif kind == 2:
            e = (c[0] + int(rng.uniform(-0.3, 0.3) * m * ONE), c[1] + int(rng.uniform(-0.3, 0.3) * m * ONE))
            cv2.rectangle(img, c, e, col, int(rng.choice([-1, 1, 3])), cv2.LINE_AA, SHIFT)
        else:
            ax = (int(rng.uniform(0.03, 0.2) * m * ONE), int(rng.uniform(0.02, 0.08) * m * ONE))
            cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, col, -1, cv2.LINE_AA, SHIFT)
    return img


def _occluder(img: np.ndarray, idmap: np.ndarray, rng: np.random.Generator, at: np.ndarray, m: int) -> None:
    import cv2

    mask = np.zeros(idmap.shape, np.uint8)
    col = tuple(float(x) for x in rng.uniform(0, 255, 3))
    c = _pt(at + rng.normal(0, 0.05 * m, 2))
    if rng.random() < 0.5:
        ax = (int(rng.uniform(0.06, 0.16) * m * ONE), int(rng.uniform(0.04, 0.1) * m * ONE))
        ang = float(rng.uniform(0, 180))
        cv2.ellipse(img, c, ax, ang, 0, 360, col, -1, cv2.LINE_AA, SHIFT)
        cv2.ellipse(mask, c, ax, ang, 0, 360, 255, -1, cv2.LINE_8, SHIFT)
    else:
        half = rng.uniform(0.04, 0.14, 2) * m * ONE
        p0 = (int(c[0] - half[0]), int(c[1] - half[1]))
        p1 = (int(c[0] + half[0]), int(c[1] + half[1]))
        cv2.rectangle(img, p0, p1, col, -1, cv2.LINE_AA, SHIFT)
        cv2.rectangle(mask, p0, p1, 255, -1, cv2.LINE_8, SHIFT)
        col2 = tuple(float(x) for x in rng.uniform(0, 255, 3))
        cv2.rectangle(img, p0, p1, col2, 1, cv2.LINE_AA, SHIFT)
    idmap[mask > 0] = OCCLUDER_ID


# ------------------------------------------------------------------- images
@dataclass
class _Figure:
    pos: np.ndarray  # (K, 2) OpenCV pixel-centre coordinates
    mask: np.ndarray  # (H, W) uint8 silhouette, unoccluded
    marker_r: np.ndarray  # (K,) marker radius in px


def _place(rng: np.random.Generator, sp: Species, sk: Skeleton, w: int, h: int, size: float,
           taken: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Pose a figure and move its bbox centre to a random point, avoiding near-coincident centres
    (the reference would drop the second one as a training sample anyway)."""
    angle = float(np.clip(rng.normal(0, 0.45), -1.2, 1.2))
    pos = pose(sp, rng, size, angle, sk)
    box_c = (pos.min(0) + pos.max(0)) / 2
    for _ in range(10):
        c = np.array([rng.uniform(0.12, 0.88) * w, rng.uniform(0.12, 0.88) * h])
        if all(np.hypot(*(c - t)) > 0.45 * size for t in taken):
            break
    return pos - box_c + c, angle


def _in_frame(pos: np.ndarray, w: int, h: int, margin: float) -> np.ndarray:
    """Shift a figure fully into the frame where it fits (centred where it does not): every image
    has one whole subject, so even a one-image dataset labels every keypoint type."""
    lo, hi = pos.min(0), pos.max(0)
    room = np.array([w - 1.0, h - 1.0]) - 2 * margin
    fits = hi - lo <= room
    shift = np.where(fits, np.clip(lo, margin, margin + room - (hi - lo)) - lo, (room + 2 * margin - lo - hi) / 2)
    return pos + shift


def _crowd(img: np.ndarray, rng: np.random.Generator, sp: Species, sk: Skeleton) -> np.ndarray:
    """A cluttered patch of many small figures; returns its polygon (OpenCV coordinates)."""
    import cv2

    h, w = img.shape[:2]
    m = min(h, w)
    centre = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    n_v = int(rng.integers(7, 12))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n_v))
    rad = rng.uniform(0.14, 0.24) * m * rng.uniform(0.8, 1.15, n_v)
    poly = centre + np.stack([np.cos(ang) * rad * rng.uniform(0.8, 1.3), np.sin(ang) * rad], 1)
    poly = np.clip(poly, 0, [w - 1, h - 1])
    patch = img.copy()
    lo, hi = poly.min(0), poly.max(0)
    for _ in range(int(rng.integers(6, 14))):
        size = rng.uniform(0.09, 0.16) * m
        angle = float(rng.uniform(-np.pi, np.pi))
        pos = pose(sp, rng, size, angle, sk)
        pos += rng.uniform(lo, hi) - (pos.min(0) + pos.max(0)) / 2
        draw_figure(patch, None, sp, sk, pos, angle, size, rng, min_px=1.0)
    region = np.zeros((h, w), np.uint8)
    cv2.fillPoly(region, [_fx(poly)], 255, cv2.LINE_8, SHIFT)
    img[region > 0] = patch[region > 0]
    return poly


def _visibility(idmap: np.ndarray, fid: int, pos: np.ndarray, r: np.ndarray, w: int, h: int) -> np.ndarray:
    """COCO v per keypoint: 0 out of frame, 2 when the centre and most of the marker show, else 1."""
    # COCO coordinates as written (2 decimals), so a point rounded onto the border counts as out
    x, y = np.round(pos[:, 0] + 0.5, 2), np.round(pos[:, 1] + 0.5, 2)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    off = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float64) * 0.5
    pts = pos[:, None, :] + off[None] * r[:, None, None]
    px = np.clip(np.round(pts[..., 0]).astype(int), 0, w - 1)
    py = np.clip(np.round(pts[..., 1]).astype(int), 0, h - 1)
    own = idmap[py, px] == fid
    seen = own[:, 0] & (own.sum(1) >= 3)
    return np.where(inside, np.where(seen, 2, 1), 0)


def _polygons(mask: np.ndarray) -> list[list[float]]:
    import cv2

    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        c = cv2.approxPolyDP(c, 0.8, True).reshape(-1, 2)
        if len(c) >= 3:
            out.append([round(float(v) + 0.5, 2) for v in c.reshape(-1)])
    return out


def render_image(sp: Species, sk: Skeleton, rng: np.random.Generator, w: int, h: int,
                 crowd: bool) -> tuple[np.ndarray, list[dict], list[np.ndarray]]:
    """One image: (BGR uint8, per-figure records with COCO keypoints in skeleton order, crowd
    polygons in COCO coordinates)."""
    import cv2

    m = min(w, h)
    img = _background(rng, h, w)
    crowds = []
    if crowd:
        crowds.append(_crowd(img, rng, sp, sk) + 0.5)
    n = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
    idmap = np.zeros((h, w), np.uint8)
    figs: list[_Figure] = []
    centres: list[np.ndarray] = []
    for fi in range(n):
        size = rng.uniform(0.38, 0.8) * m
        pos, angle = _place(rng, sp, sk, w, h, size, centres)
        if fi == 0:
            pos = _in_frame(pos, w, h, margin=3.0)
        centres.append((pos.min(0) + pos.max(0)) / 2)
        mask = np.zeros((h, w), np.uint8)
        draw_figure(img, mask, sp, sk, pos, angle, size, rng)
        idmap[mask > 0] = fi + 1
        r = np.maximum(1.6, sp.marker_size * size)
        figs.append(_Figure(pos, mask, r))
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 3))):
            f = figs[int(rng.integers(0, n))]
            _occluder(img, idmap, rng, f.pos[int(rng.integers(0, len(f.pos)))], m)
    sigma = rng.uniform(0, 7)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    if sigma > 0.5:
        img = np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32), 0, 255).astype(np.uint8)
    records = []
    for fi, f in enumerate(figs):
        if not f.mask.any():
            continue
        v = _visibility(idmap, fi + 1, f.pos, f.marker_r, w, h)
        if not (v > 0).any():
            continue
        rows, cols = np.any(f.mask, 1), np.any(f.mask, 0)
        y0, y1 = np.flatnonzero(rows)[[0, -1]]
        x0, x1 = np.flatnonzero(cols)[[0, -1]]
        kp = np.concatenate([np.round(f.pos + 0.5, 2), v[:, None]], 1)
        kp[v == 0, :2] = 0
        records.append({"keypoints": kp, "bbox": [int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)],
                        "segmentation": _polygons(f.mask), "silhouette": int(np.count_nonzero(f.mask))})
    return img, records, crowds


# ------------------------------------------------------------------ dataset
def parse_size(text: str) -> tuple[int, int]:
    """'160x160' -> (160, 160); a single number means a square."""
    s = str(text).lower().replace(" ", "")
    parts = s.split("x")
    try:
        wh = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else None
    except ValueError:
        wh = None
    if wh is None or not all(MIN_SIZE <= v <= MAX_SIZE for v in wh):
        raise InputError(f"size must be WIDTHxHEIGHT with each side in [{MIN_SIZE}, {MAX_SIZE}], got {text!r}",
                         where="--size")
    return wh


def _category(sk: Skeleton) -> dict:
    names = list(sk.coco_keypoints)
    src = sk.source_index(names)
    edges = [[int(src[a]) + 1, int(src[b]) + 1] for a, b in sk.limbs if src[a] >= 0 and src[b] >= 0]
    return {"id": 1, "name": sk.name, "supercategory": "figure", "keypoints": names, "skeleton": edges}


def _r(v: float) -> float | int:
    f = round(float(v), 2)
    return int(f) if f.is_integer() else f


@dataclass(frozen=True)
class SynthResult:
    """What synthesize() wrote: the annotations file and what it holds."""

    path: Path
    images: int
    figures: int
    crowd_regions: int
    visibility: tuple[int, int, int]  # the figures' keypoints with v = 0 (out of frame), 1 (occluded), 2

    def shares(self) -> tuple[float, float, float]:
        """The fractions of v = 0, 1, 2 among the figures' keypoints."""
        total = max(1, sum(self.visibility))
        return self.visibility[0] / total, self.visibility[1] / total, self.visibility[2] / total


def generate(skeleton: Skeleton, out_dir: Path, n_images: int, size: tuple[int, int], seed: int,
             progress: Callable[[int, int], None] | None = None, area: str = "bbox") -> Path:
    """synthesize()'s annotations path."""
    return synthesize(skeleton, out_dir, n_images, size, seed, progress, area).path


def synthesize(skeleton: Skeleton, out_dir: Path, n_images: int, size: tuple[int, int], seed: int,
               progress: Callable[[int, int], None] | None = None, area: str = "bbox") -> SynthResult:
    """Write n_images drawn images to out_dir/images/ and out_dir/annotations.json; returns the
    annotations path and its counts. `area` of each figure: "bbox" (its box) or "silhouette" (its drawn pixels,
    unoccluded; see the module docstring). Everything is written into a temporary sibling folder first and moved into
    place at the end, so an interrupted run leaves no dataset that looks complete. An existing
    out_dir is replaced only if synth made it (its io.MARKER names synth); the caller decides
    whether replacing is allowed at all (io.claim_output with --force)."""
    import cv2

    out_dir = Path(out_dir)
    w, h = int(size[0]), int(size[1])
    if not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        raise InputError(f"image size {w}x{h} outside [{MIN_SIZE}, {MAX_SIZE}]")
    if n_images < 1:
        raise InputError(f"need at least one image, got {n_images}")
    if area not in ("bbox", "silhouette"):
        raise InputError(f"area must be 'bbox' or 'silhouette', got {area!r}")
    silhouette = area == "silhouette"
    check_replaceable(out_dir, COMMAND)
    sp = make_species(skeleton)
    src = skeleton.source_index(list(skeleton.coco_keypoints))
    keep = np.flatnonzero(src >= 0)
    order = keep[np.argsort(src[keep])]  # skeleton index of each COCO keypoint, in COCO order
    plan = np.random.default_rng([seed, 0])
    crowd_flags = plan.random(n_images) < 0.15
    if n_images >= 2 and not crowd_flags.any():
        crowd_flags[n_images // 2] = True

    tmp = staging_dir(out_dir, COMMAND)
    try:
        (tmp / "images").mkdir()
        images, anns = [], []
        for i in range(n_images):
            rng = np.random.default_rng([seed, 1, i])
            img, records, crowds = render_image(sp, skeleton, rng, w, h, bool(crowd_flags[i]))
            name = f"{i + 1:06d}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise InputError(f"OpenCV could not encode {name}")
            (tmp / "images" / name).write_bytes(buf.tobytes())
            images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
            _add_annotations(anns, i + 1, records, crowds, order, silhouette)
            if progress is not None:
                progress(i + 1, n_images)
        data = {
            "info": {"description": f"posedata synthetic figures for skeleton {skeleton.name}",
                     "generator": GENERATOR, "skeleton": skeleton.name, "fingerprint": skeleton.fingerprint,
                     "seed": int(seed), "size": [w, h]},
            "licenses": [],
            "images": images,
            "annotations": anns,
            "categories": [_category(skeleton)],
        }
        (tmp / "annotations.json").write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        replace_dir(tmp, out_dir, COMMAND)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(getattr(e, "filename", None) or out_dir, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    figures = [a for a in anns if not a["iscrowd"]]
    vis = np.bincount(np.array([v for a in figures for v in a["keypoints"][2::3]], dtype=np.int64), minlength=3)
    return SynthResult(out_dir / "annotations.json", n_images, len(figures), len(anns) - len(figures),
                       (int(vis[0]), int(vis[1]), int(vis[2])))


def _add_annotations(anns: list[dict], image_id: int, records: list[dict], crowds: list[np.ndarray],
                     order: np.ndarray, silhouette: bool) -> None:
    """Append one image's figures (keypoints in COCO order) and crowd regions to `anns`."""
    for rec in records:
        kp = rec["keypoints"][order]
        flat: list[float | int] = []
        for x, y, v in kp.tolist():
            flat += [_r(x), _r(y), int(v)]
        bx = rec["bbox"]
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                     "keypoints": flat, "num_keypoints": int((kp[:, 2] > 0).sum()), "bbox": bx,
                     "area": rec["silhouette"] if silhouette else int(bx[2] * bx[3]),
                     "segmentation": rec["segmentation"]})
    for poly in crowds:
        x0, y0 = poly.min(0)
        x1, y1 = poly.max(0)
        area = 0.5 * abs(float(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1))))
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 1,
                     "keypoints": [0] * (3 * len(order)), "num_keypoints": 0,
                     "bbox": [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)], "area": _r(area),
                     "segmentation": [[_r(v) for v in poly.reshape(-1)]]})
