"""A first skeleton drafted from a dataset's own definition (a COCO category's edges, a tool's
keypoint list): limbs read from its edges, a root guessed, limbs oriented the way grouping walks
them. The result is a dict for the user to review, never a Skeleton used as it is."""
from __future__ import annotations

from collections import deque
from typing import Any

from ..errors import SkeletonError
from ..sides import guess_flip_pairs
from .file import from_dict


def from_coco_category(cat: dict[str, Any], name: str | None = None, file: str | None = None,
                       where: str = "categories[0]", edges: bool = True) -> tuple[dict[str, Any], list[str]]:
    """A starting skeleton dict from a COCO keypoint category, for the user to review, and notes on
    how its edges were read. edges False leaves the category's `skeleton` out (no limbs).
    Raises SkeletonError located at the edge when the edges do not fit the keypoint list."""
    kps = [str(k) for k in cat.get("keypoints", [])]
    limbs: list[list[str]] = []
    notes: list[str] = []
    if edges:
        limbs, notes = coco_edges(kps, cat.get("skeleton"), file, f"{where}.skeleton")
    else:
        notes.append("the category's skeleton edges were left out (--ignore-edges): add limbs that connect every "
                     "keypoint to the root")
    return {
        "name": name or str(cat.get("name", "skeleton")),
        "keypoints": kps,
        "limbs": limbs,
        "root": guess_root(kps, limbs),
        "flip": [list(p) for p in guess_flip_pairs(kps)],
        "sigmas": [0.05] * len(kps),
    }, notes


def coco_edges(kps: list[str], edges: Any, file: str | None, where: str) -> tuple[list[list[str]], list[str]]:
    """A COCO category's `skeleton` as limbs of keypoint names, and notes. COCO edges are 1-based;
    a list that uses index 0 and never K is 0-based (several public exports write it so) and is read
    as such, with a note. Edges that fit neither (an index above K, or both 0 and K: copied from
    another keypoint list) are refused, never shifted or dropped. Repeated edges and edges from a
    keypoint to itself carry no limb and are noted."""
    k = len(kps)
    if edges is None:
        return [], ["the category has no skeleton edges: add limbs that connect every keypoint to the root"]
    if not isinstance(edges, list):
        raise SkeletonError(f"expected a list of [a, b] keypoint index pairs, got {type(edges).__name__}; "
                            "correct it, or pass --ignore-edges", file=file, where=where)
    for j, e in enumerate(edges):
        if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in e)):
            raise SkeletonError(f"expected an [a, b] pair of keypoint indices, got {e!r}; correct it, or pass "
                                "--ignore-edges", file=file, where=f"{where}[{j}]")
    flat = [x for e in edges for x in e]
    if not flat:
        return [], ["the category's skeleton is empty: add limbs that connect every keypoint to the root"]
    lo, hi = min(flat), max(flat)
    notes = []
    if lo >= 1 and hi <= k:
        base = 1
    elif lo == 0 and hi <= k - 1:
        base = 0
        notes.append(f"the category's skeleton edges are 0-based (index 0 is used, {k} never): read as 0-based, "
                     f"so edge {edges[0]} is {kps[edges[0][0]]}-{kps[edges[0][1]]}")
    else:
        out = [(j, x) for j, e in enumerate(edges) for x in e if x < 0 or x > k]
        if out:
            bad, x = out[0]
            why = f"index {x} is {'negative' if x < 0 else f'beyond the {k} keypoints'}"
        else:
            bad = next(j for j, e in enumerate(edges) if k in e)
            why = f"the edges use both 0 and {k}, so they are neither 1-based nor 0-based"
        raise SkeletonError(f"the category's skeleton edges do not fit its {k} keypoints: {why} (edge {edges[bad]}); "
                            "they were probably written for another keypoint list. Correct them, or pass "
                            "--ignore-edges and write the limbs yourself", file=file, where=f"{where}[{bad}]")
    limbs: list[list[str]] = []
    for j, (a, b) in enumerate(edges):
        pair = [kps[a - base], kps[b - base]]
        if a == b:
            notes.append(f"{where}[{j}] joins {pair[0]!r} to itself: no limb")
        elif pair in limbs or pair[::-1] in limbs:
            notes.append(f"{where}[{j}] repeats the limb {pair[0]}-{pair[1]}")
        else:
            limbs.append(pair)
    return limbs, notes


def orient_limbs(d: dict[str, Any]) -> dict[str, Any]:
    """d with every limb listed [known end, new end] in grouping order (the root outwards).

    posedata groups a limb in either direction, but the reference's own group_keypoints scores a
    pair along second - first, so a skeleton made by `init` (whose edges come in the dataset's
    order) is written the way both accept; S024 then stays quiet. A dict that does not parse is
    returned as it is, for the checks to report."""
    try:
        sk = from_dict(d)
    except SkeletonError:
        return d
    limbs = [list(x) for x in d["limbs"]]
    for li, known, new in sk.grouping_steps:
        if sk.limbs[li] != (known, new):
            limbs[li] = [sk.keypoints[known], sk.keypoints[new]]
    return {**d, "limbs": limbs}


def guess_root(kps: list[str], limbs: list[list[str]]) -> str:
    """The best-connected keypoint; ties go to the most central one (smallest eccentricity)."""
    adj: dict[str, set[str]] = {k: set() for k in kps}
    for a, b in limbs:
        adj[a].add(b)
        adj[b].add(a)

    def ecc(k: str) -> int:
        dist = {k: 0}
        q = deque([k])
        while q:
            x = q.popleft()
            for y in adj[x]:
                if y not in dist:
                    dist[y] = dist[x] + 1
                    q.append(y)
        return max(dist.values()) if len(dist) == len(kps) else 10**6

    return min(kps, key=lambda k: (-len(adj[k]), ecc(k), kps.index(k))) if kps else ""
