"""Left/right from keypoint names: which names look sided, and which two are mirror partners.

Datasets spell sides many ways: `left_eye`/`right_eye`, `LeftEar`, `leftear`, `eye_l`, `l_knee`,
`L_Eye`/`R_Eye`, `L_F_Paw` (Animal-Pose), `eyeL`/`eyeR`, `forelegL1`/`forelegR1` (DeepPoseKit fly and
locust), `LShoulder`/`RShoulder` (OpenPose), `lShoulder`. A name is cut into tokens at separators,
at case changes and at digits; a side is a token `left`/`right`/`l`/`r` (any case), or `left`/`right`
glued to the front or back of a lower-case word (`leftear`, `earright`). Two names are partners when
they have opposite sides and the same remaining tokens with the side in the same place, so
`forelegL1` pairs with `forelegR1` and never with `forelegR2`.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np

# tokens: runs of capitals followed by lower case ("Shoulder"), capital runs not followed by lower
# case ("L" in "LShoulder", "HEAD"), lower-case runs, digit runs
_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_WORD = {"left": "left", "right": "right", "l": "left", "r": "right"}
_GLUED = re.compile(r"^(left|right)(.+)$|^(.+?)(left|right)$")


def tokens(name: str) -> list[str]:
    """Tokens of a name (see the module doc): 'forelegL1' -> ['foreleg', 'L', '1']."""
    out: list[str] = []
    for part in re.split(r"[\s_\-.]+", str(name).strip()):
        out.extend(_TOKEN.findall(part) or ([part] if part else []))
    return out


def sided(name: str) -> tuple[str, str] | None:
    """(side, stem) when the name looks sided, else None. The stem is the name without its side,
    lower case, with `*` where the side was: 'forelegL1' -> ('left', 'foreleg_*_1'). A lone `l`/`r`
    next to nothing but digits is no side (`L1`..`L5` are lumbar vertebrae, not left ones)."""
    toks = tokens(name)
    low = [t.lower() for t in toks]
    for i, t in enumerate(low):
        side = _WORD.get(t)
        if side is None:
            continue
        rest = low[:i] + low[i + 1:]
        if not rest or (len(t) == 1 and all(x.isdigit() for x in rest)):
            continue
        return side, "_".join(low[:i] + ["*"] + low[i + 1:])
    for i, t in enumerate(toks):
        if not t.islower():  # glued words only inside one lower-case token: 'leftear', not 'Leftover'
            continue
        m = _GLUED.match(t)
        if m:
            side, word, pos = (m.group(1), m.group(2), 0) if m.group(1) else (m.group(4), m.group(3), 1)
            inner = ["*", word] if pos == 0 else [word, "*"]
            return side, "_".join(low[:i] + inner + low[i + 1:])
    return None


def name_side(name: str) -> str | None:
    """'left' or 'right' when a name looks sided, else None."""
    s = sided(name)
    return None if s is None else s[0]


def guess_flip_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """(left, right) pairs of names with opposite sides and the same stem, in the order of the left
    names. A stem with more than one name on a side is ambiguous and left unpaired."""
    by_stem: dict[str, dict[str, list[str]]] = {}
    for n in names:
        s = sided(n)
        if s is not None:
            by_stem.setdefault(s[1], {}).setdefault(s[0], []).append(n)
    pairs = [(d["left"][0], d["right"][0]) for d in by_stem.values()
             if len(d.get("left", ())) == 1 and len(d.get("right", ())) == 1]
    order = {n: i for i, n in enumerate(names)}
    return sorted(pairs, key=lambda p: order[p[0]])


def unpaired_sided(names: Sequence[str], paired: set[str]) -> list[str]:
    """Names that look sided but are in no pair of `paired` (a flip map's names) and have no
    guessed partner either."""
    guessed = {n for p in guess_flip_pairs(names) for n in p}
    return [n for n in names if name_side(n) and n not in paired and n not in guessed]


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
