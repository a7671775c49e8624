"""`posedata skeleton init`: a starting skeleton file from a dataset's own definition.

Each source (a COCO category, a DeepLabCut config.yaml, a YOLO-pose dataset YAML, a CVAT
annotations.xml, a SLEAP file) gives a skeleton dict and notes; this module orients the limbs, parses and checks
the result and builds the YAML text with its review header. The reader of each source lives with
its format (posedata/formats/); this module only chooses between them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import skeleton as S
from .bodyframe import centred
from .errors import InputError
from .findings import Finding
from .io import atomic_write_text, load_json

SOURCES = ("coco", "dlc", "yolo", "cvat", "sleap")


@dataclass
class SkeletonDraft:
    """A skeleton drafted from a source: its dict, the YAML text to write, and what to review."""

    spec: dict[str, Any]
    text: str
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        d = self.spec
        return (f"{len(d['keypoints'])} keypoints, {len(d['limbs'])} limbs, root {d['root']!r}, "
                f"{len(d['flip'])} flip pair(s)")


def read_source(kind: str, path: Path, category: Any = None, edges: bool = True) -> tuple[dict[str, Any], list[str]]:
    """(skeleton dict, notes) from one source. `category`: for coco a parsed --category (id, name,
    ids or all), for yolo a class, for cvat a skeleton label and for sleap a skeleton (text), unused
    for dlc."""
    if kind == "sleap":
        from .formats.sleap import skeleton_from_slp

        return skeleton_from_slp(path, category)
    if kind == "cvat":
        from .formats.cvat import skeleton_from_xml

        return skeleton_from_xml(path, category)
    if kind == "dlc":
        return _from_dlc(path)
    if kind == "yolo":
        from .formats.yolo import skeleton_from_yaml

        return skeleton_from_yaml(path, category, edges=edges)
    if kind == "coco":
        return _from_coco(path, category, edges)
    raise ValueError(f"unknown skeleton source {kind!r}; expected one of {', '.join(SOURCES)}")


def source_files(kind: str, path: Path) -> list[Path]:
    """What `skeleton init` reads from a source (its output may replace none of it): the source,
    and for a DLC config the project's labelled tables, which _from_dlc reads for limbs, and their
    `labeled-data` folder (a table's .h5 twin is not read but holds the same labels)."""
    if kind != "dlc":
        return [path]
    from .formats.deeplabcut import tables_in

    project = Path(path).resolve().parent
    labeled = project / "labeled-data"
    return [path, *tables_in(project), *([labeled] if labeled.is_dir() else [])]


def _from_coco(path: Path, category: Any, edges: bool) -> tuple[dict[str, Any], list[str]]:
    from .coco import select_categories

    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise InputError("expected a COCO object with a 'categories' list", file=str(path), where="categories")
    # several categories (--category all, or ids) share one keypoint list: the first one's edges are read
    chosen = select_categories(data["categories"], category, str(path))
    at = chosen[0]
    d, notes = S.from_coco_category(data["categories"][at], file=str(path), where=f"categories[{at}]", edges=edges)
    if d["limbs"]:
        ids = {data["categories"][i].get("id") for i in chosen}
        pts, lab = _coco_points(data.get("annotations"), ids, len(d["keypoints"]))
        d, note = connect_parts(d, pts, lab)
        notes += [note] if note else []
    return d, notes


def _from_dlc(path: Path) -> tuple[dict[str, Any], list[str]]:
    """DeepLabCut's `skeleton` is optional (only for drawing) and usually empty: the limbs the
    config leaves out are drafted from the project's labelled frames, as for a COCO file's loose
    chains."""
    from .formats.deeplabcut import labelled_points, skeleton_from_config

    d, notes = skeleton_from_config(path)
    pts, lab, unread = labelled_points(Path(path).resolve().parent, d["keypoints"])
    d, note = connect_parts(d, pts, lab)
    if note:
        notes = [n for n in notes if "no skeleton edges" not in n] + unread + [note]
    return d, notes


def _coco_points(annotations: Any, ids: set, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2) points and (N, K) labelled flags of the annotations of the chosen categories;
    records that do not parse are left out here (validate locates them)."""
    rows = []
    for a in annotations if isinstance(annotations, list) else []:
        kp = a.get("keypoints") if isinstance(a, dict) and a.get("category_id") in ids else None
        if isinstance(kp, list) and len(kp) == 3 * k and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in kp):
            rows.append(kp)
    kp = np.asarray(rows, np.float64).reshape(-1, k, 3)
    return kp[..., :2], (kp[..., 2] > 0) & np.isfinite(kp[..., :2]).all(-1)


def connect_parts(d: dict[str, Any], pts: np.ndarray, lab: np.ndarray) -> tuple[dict[str, Any], str | None]:
    """d with limbs added so that every keypoint reaches the root, and a note naming them (None
    when nothing was missing). Some datasets' edges leave whole chains unattached (DeepPoseKit's fly
    and locust: each leg is a chain of its own, S020); each part is joined by its keypoint nearest
    to the connected body in the data (mean distance over instances labelling both, in units of the
    instance's spread), nearest part first (a minimum spanning tree over the parts). Each added limb
    comes with its mirror image under the flip map, so a flipped sample keeps a PAF channel for it
    (S021). Parts no instance places stay unattached, for skeleton check to report."""
    kps = list(d["keypoints"])
    k = len(kps)
    index = {n: i for i, n in enumerate(kps)}
    flip = np.arange(k)
    for a, b in d["flip"]:
        flip[index[a]], flip[index[b]] = index[b], index[a]
    part = np.arange(k)  # union-find over the edges the dataset gives

    def find(i: int) -> int:
        while part[i] != i:
            part[i] = part[part[i]]
            i = int(part[i])
        return i

    for a, b in d["limbs"]:
        part[find(index[a])] = find(index[b])
    root = index[S.guess_root(kps, d["limbs"])]
    if all(find(i) == find(root) for i in range(k)):
        return d, None
    spread = np.sqrt(centred(pts, lab)[1])[:, None]
    unit = pts / np.maximum(spread, 1e-9)[..., None]
    both = lab[:, :, None] & lab[:, None, :]
    dist = np.linalg.norm(unit[:, :, None] - unit[:, None, :], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(both.any(0), np.where(both, dist, 0.0).sum(0) / both.sum(0), np.inf)
    mean = (mean + mean[flip][:, flip]) / 2  # a limb and its mirror image are chosen together
    degree = np.zeros(k, int)
    for a, b in d["limbs"]:
        degree[[index[a], index[b]]] += 1
    body = np.array([find(i) == find(root) for i in range(k)])
    # a part joins the body at one of its chain's ends (a leg at its first segment, never mid-leg),
    # and joins the body itself, never another loose part (a foreleg is no limb of a midleg)
    ends = (degree <= 1) & ~body
    cand = np.where(body[:, None] & ends[None, :], mean, np.inf)
    added: list[list[str]] = []
    for p in sorted({find(i) for i in range(k) if not body[i]}):
        in_p = np.array([find(i) == p for i in range(k)])
        c = np.where(in_p[None, :], cand, np.inf)
        if not in_p.any() or not np.isfinite(c).any():
            continue  # joined already as the mirror image of an earlier part, or never seen with the body
        a, b = (int(x) for x in np.unravel_index(np.argmin(c), c.shape))
        for u, v in ((a, b), (int(flip[a]), int(flip[b]))):
            if find(u) != find(v):
                added.append([kps[u], kps[v]])
                part[find(v)] = find(u)
    if not added:
        return d, None
    limbs = d["limbs"] + added
    left = [kps[i] for i in range(k) if find(i) != find(root)]
    what = ("the dataset's skeleton edges leave parts unconnected to the root" if d["limbs"] else
            "the dataset gives no skeleton edges")
    note = (f"{what}; added {len(added)} limb(s), each "
            f"joining a loose chain's end to the body keypoint nearest it in the data ({len(pts)} instance(s)): "
            + ", ".join(f"{a}-{b}" for a, b in added) + "; review them"
            + (f" (still unconnected, never labelled with the body: {', '.join(left)})" if left else ""))
    return {**d, "limbs": limbs, "root": S.guess_root(kps, limbs)}, note


def draft(kind: str, path: Path, output: Path, category: Any = None, edges: bool = True) -> SkeletonDraft:
    """The skeleton file `skeleton init` writes for this source (not written yet)."""
    d, notes = read_source(kind, path, category, edges)
    d = S.orient_limbs(d)
    sk, findings = S.parse(d, file=str(output))
    if sk is not None:
        findings += S.check(sk)
    # a COCO file is named by its file name, the tool files (often config.yaml) by their path
    src = path.name if kind == "coco" else str(path)
    text = (f"# Generated by `posedata skeleton init` from {src}: review limbs, root, flip and sigmas.\n"
            "# Sigmas are placeholders (0.05); set per-keypoint OKS sigmas for evaluation.\n"
            + "".join(f"# note: {n}\n" for n in notes) + S.dump_yaml(d))
    return SkeletonDraft(d, text, list(notes), findings)


def write_draft(kind: str, path: Path, output: Path, category: Any = None, edges: bool = True) -> SkeletonDraft:
    """draft() written to `output` atomically."""
    result = draft(kind, path, output, category, edges)
    atomic_write_text(output, result.text)
    return result
