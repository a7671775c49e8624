"""Drawing a synthetic figure: tapered, textured limb strokes and oriented keypoint markers,
anti-aliased with OpenCV's fixed-point coordinates; the backgrounds and occluders around them."""
from __future__ import annotations

import math

import numpy as np

from .skeleton import Skeleton
from .synth_species import Species, directions

SHIFT = 4  # OpenCV fixed-point drawing: coordinates in 1/16 px
ONE = 1 << SHIFT
OCCLUDER_ID = 255


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


def fixed_point(p: np.ndarray) -> np.ndarray:
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


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
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


def occluder(img: np.ndarray, idmap: np.ndarray, rng: np.random.Generator, at: np.ndarray, m: int) -> None:
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
