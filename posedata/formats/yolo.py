"""YOLO-pose (Ultralytics): a dataset YAML plus one label txt per image; import and export.

Dataset YAML: `path` (dataset root), `train`/`val`/`test` (image folders, txt files listing
images, or lists of either, relative to `path`), `kpt_shape: [K, 2 or 3]`, `flip_idx`, `names`
(class id -> name) and, in newer datasets, `kpt_names` (class id -> keypoint names).
Label line: `class cx cy w h x1 y1 [v1] ... xK yK [vK]`, all normalised to the image size, so
import needs the images (their headers give the sizes). A label file sits where the image is, with
the last `images` folder of its path replaced by `labels` and the suffix by `.txt`.

Keypoints are positional in YOLO. Import matches them to the skeleton by `kpt_names` when the YAML
has them; otherwise by position against the skeleton's source order (`source.keypoints`, else its
own non-derived keypoints), and only when the counts agree and the YAML's `flip_idx` (if any) is the
skeleton's flip map in that order; the report says that it matched by position and in which order.
Visibility: with kpt_shape [K, 3], v is COCO's 0/1/2; with [K, 2], (0, 0) is unlabelled, any
other point is v=2.

Export writes what Ultralytics' label check accepts: every value in [0, 1] (a keypoint outside
the image is written as unlabelled and reported, since one out-of-range value makes Ultralytics
drop the whole image as corrupt), boxes clipped to the image.
"""
from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import (
    check_replaceable,
    load_yaml,
    parse_yaml,
    read_text,
    safe_image_path,
    staged_dir,
)
from ..skeleton import Skeleton, guess_root, normalize_name
from .base import ImportOptions, ImportReport, ImportResult

NAME = "yolo"
COMMAND = "export yolo"  # the name in the marker of the dataset folders it makes (io.MARKER)
# Ultralytics' own list (what a YOLO dataset counts as an image), so an image posedata cannot
# read is refused by name (images.image_header) instead of being skipped in silence
IMAGE_SUFFIXES = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"}
SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------ the YAML
def _load_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    if not isinstance(data, dict) or "kpt_shape" not in data:
        raise InputError("expected a YOLO-pose dataset YAML (a mapping with kpt_shape, train/val, names)", file=str(path))
    return data


def kpt_shape(data: dict[str, Any], file: str) -> tuple[int, int]:
    ks = data.get("kpt_shape")
    if not (isinstance(ks, list) and len(ks) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in ks)
            and ks[0] > 0 and ks[1] in (2, 3)):
        raise InputError(f"kpt_shape must be [number of keypoints, 2 or 3], got {ks!r}", file=file, where="kpt_shape")
    return ks[0], ks[1]


def class_names(data: dict[str, Any], file: str) -> dict[int, str]:
    names = data.get("names")
    if names is None:
        nc = data.get("nc", 1)
        return {i: str(i) for i in range(nc if isinstance(nc, int) and nc > 0 else 1)}
    if isinstance(names, list):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(names, dict) and all((isinstance(k, int) and not isinstance(k, bool)) or (isinstance(k, str) and k.isdigit())
                                       for k in names):
        return {int(k): str(v) for k, v in names.items()}
    raise InputError(f"names must be a list or a mapping class id -> name, got {names!r}", file=file, where="names")


def keypoint_names(data: dict[str, Any], cls: int, K: int, file: str) -> list[str] | None:
    """The YAML's keypoint names for class `cls`: `kpt_names` as {class: [names]}, [[names], ...]
    (one list per class) or one flat list shared by all classes; None when absent."""
    kn = data.get("kpt_names")
    if kn is None:
        return None
    where = "kpt_names"
    if isinstance(kn, dict):
        if cls not in kn:
            raise InputError(f"no names for class {cls} (has {sorted(kn, key=str)})", file=file, where=where)
        names, where = kn[cls], f"kpt_names.{cls}"
    elif isinstance(kn, list) and kn and all(isinstance(x, list) for x in kn):
        if cls >= len(kn):
            raise InputError(f"no names for class {cls} ({len(kn)} list(s))", file=file, where=where)
        names, where = kn[cls], f"kpt_names[{cls}]"
    else:
        names = kn
    if not (isinstance(names, list) and all(isinstance(n, (str, int)) for n in names)):
        raise InputError(f"expected a list of keypoint names, got {names!r}", file=file, where=where)
    if len(names) != K:
        raise InputError(f"{len(names)} keypoint names but kpt_shape says {K}", file=file, where=where)
    return [str(n) for n in names]


def flip_idx(data: dict[str, Any], K: int, file: str) -> list[int] | None:
    fi = data.get("flip_idx")
    if fi is None:
        return None
    if not (isinstance(fi, list) and len(fi) == K and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < K
                                                          for v in fi)):
        raise InputError(f"flip_idx must list {K} keypoint indices in 0..{K - 1}, got {fi!r}", file=file, where="flip_idx")
    if any(fi[fi[i]] != i for i in range(K)):
        raise InputError("flip_idx is not symmetric (flip_idx[flip_idx[i]] must be i)", file=file, where="flip_idx")
    return fi


def _choose_class(names: dict[int, str], wanted: str | None, file: str) -> int:
    if wanted is None:
        if len(names) == 1:
            return next(iter(names))
        raise InputError(f"{len(names)} classes ({names}); choose one with --category NAME_OR_ID", file=file, where="names")
    w = str(wanted).strip()
    for k, n in names.items():
        if str(k) == w or normalize_name(n) == normalize_name(w):
            return k
    raise InputError(f"no class {wanted!r}; classes: {names}", file=file, where="names")


def _dataset_root(data: dict[str, Any], yaml_path: Path, options: ImportOptions) -> Path:
    if options.images is not None:
        root = Path(options.images)
        if not root.is_dir():
            raise InputError("images folder not found", file=str(root))
        return root.resolve()
    base = yaml_path.resolve().parent
    p = data.get("path")
    if p is None or p == "":
        return base
    if not isinstance(p, str):
        raise InputError(f"path must be a folder name, got {p!r}", file=str(yaml_path), where="path")
    for cand in (base / p, base):  # Ultralytics puts a relative path under its datasets folder; try beside the YAML
        if cand.is_dir():
            return cand.resolve()
    raise InputError(f"dataset root {p!r} not found (relative to {base}); pass --images with the dataset root",
                     file=str(yaml_path), where="path")


def _split_images(data: dict[str, Any], root: Path, file: str) -> list[tuple[str, Path]]:
    """(split, image path) for every image the YAML lists, in split order, each image once."""
    out: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    for split in SPLITS:
        spec = data.get(split)
        if spec in (None, ""):
            continue
        specs = spec if isinstance(spec, list) else [spec]
        for k, s in enumerate(specs):
            where = split if not isinstance(spec, list) else f"{split}[{k}]"
            if not isinstance(s, str) or not s:
                raise InputError(f"expected a folder or txt file relative to the dataset root, got {s!r}", file=file,
                                 where=where)
            # the dataset YAML is the user's own config, so its folders may lie beside the root;
            # like Ultralytics, '../x' that does not exist is tried as 'x' (Roboflow's exports)
            p = (root / s).resolve()
            if not p.exists() and s.startswith("../"):
                p = (root / s[3:]).resolve()
            if p.is_dir():
                imgs = sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            elif p.is_file() and p.suffix == ".txt":
                imgs = []
                for ln, line in enumerate(read_text(p).splitlines(), start=1):
                    line = line.strip()
                    if not line:
                        continue
                    q = (p.parent / line) if line.startswith("./") else (root / line)
                    if not q.is_file():
                        raise InputError(f"listed image {line!r} not found", file=str(p), where=f"line {ln}")
                    imgs.append(q)
            else:
                raise InputError(f"{s!r} is neither an image folder nor a txt list under {root}", file=file, where=where)
            for q in imgs:
                q = q.resolve()
                if q not in seen:
                    seen.add(q)
                    out.append((split, q))
    if not out:
        raise InputError(f"no images found under the train/val/test entries (dataset root {root})", file=file,
                         where="train")
    return out


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last `images` folder of the path becomes `labels`, suffix `.txt`."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _positional_check(sk: Skeleton, K: int, fi: list[int] | None, file: str) -> list[str]:
    """The skeleton order YOLO keypoints are taken in when the YAML has no names; refuses a count or
    flip_idx that contradicts it, since a positional match would then swap body parts silently."""
    order = list(sk.coco_keypoints)
    hint = ("add kpt_names to the dataset YAML, or list the dataset's order under source.keypoints in the "
            "skeleton file")
    if K != len(order):
        raise InputError(f"the dataset YAML has no kpt_names and kpt_shape says {K} keypoints, but skeleton "
                         f"{sk.name!r} has {len(order)} ({order}); YOLO keypoints are positional: {hint}",
                         file=file, where="kpt_shape")
    if fi is not None:
        expected = _flip_in_order(sk, order)
        if fi != expected:
            bad = [f"{order[i]}->{order[fi[i]]}" for i in range(K) if fi[i] != expected[i]]
            raise InputError(f"flip_idx disagrees with skeleton {sk.name!r}'s flip map taken in the order {order} "
                             f"(at {bad[:6]}); the keypoint order probably differs: {hint}", file=file, where="flip_idx")
    return order


def _flip_in_order(sk: Skeleton, order: list[str]) -> list[int]:
    """The skeleton's flip map as indices into `order` (names in the skeleton's source naming)."""
    own = sk.source_index(order)
    out = list(range(len(order)))
    for i in range(sk.num_keypoints):
        j, fj = int(own[i]), int(own[sk.flip[i]])
        if j >= 0 and fj >= 0:
            out[j] = fj
    return out


# ---------------------------------------------------------------------- detect
def detect(path: Path) -> bool:
    from .builder import peek_text

    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in (".yaml", ".yml"):
        return False
    head = peek_text(path, 65536)
    if "kpt_shape" not in head:
        return False
    try:
        data = parse_yaml(head)
    except InputError:
        return False
    return isinstance(data, dict) and "kpt_shape" in data


# ------------------------------------------------------------------------ read
def read(path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult:
    from ..images import image_header
    from .builder import DatasetBuilder, RawImage, RawInstance, keypoint_mapping

    path = Path(path)
    file = str(path)
    if path.is_dir():
        raise InputError("expected the dataset YAML (with kpt_shape), got a folder", file=file)
    data = _load_yaml(path)
    K, D = kpt_shape(data, file)
    names = class_names(data, file)
    cls = _choose_class(names, options.category, file)
    fi = flip_idx(data, K, file)
    kn = keypoint_names(data, cls, K, file)
    report = ImportReport(format=NAME, source=file)
    if kn is not None:
        mapping = keypoint_mapping(kn, skeleton, file=file, where="kpt_names")
    else:
        order = _positional_check(skeleton, K, fi, file)
        mapping = np.arange(K)
        report.warnings.append(
            f"the dataset YAML has no kpt_names: its {K} keypoints were matched BY POSITION to {order}"
            f"{' (flip_idx agrees with the skeleton)' if fi is not None else ' (no flip_idx to cross-check)'}; "
            "check a few images with `posedata preview` or add kpt_names to the YAML")
    root = _dataset_root(data, path, options)
    imgs = _split_images(data, root, file)
    if any(not ip.is_relative_to(root) for _, ip in imgs):
        # split folders beside the root: name images from the folder that holds them all
        root = Path(os.path.commonpath([str(root)] + [str(ip) for _, ip in imgs]))
    # names and sizes are settled here (the images were listed by the YAML), so the builder gets
    # no --images to resolve them again
    build_opts = ImportOptions(images=None, category=options.category, bbox_margin=options.bbox_margin,
                               drop_unlabelled=options.drop_unlabelled, keep_empty=options.keep_empty)
    builder = DatasetBuilder(skeleton, build_opts, report, file=file, category_name=names[cls])
    if options.images is None or root != Path(options.images).resolve():
        report.warnings.append(f"images root {root}: the output's file_name values are relative to it "
                               "(pass it as --images to later commands)")
    n_vals = 5 + K * D
    other_classes = 0
    for key, (split, ip) in enumerate(imgs, start=1):
        name = ip.relative_to(root).as_posix()
        w, h = image_header(ip).size
        builder.add_image(RawImage(key=key, file_name=name, width=w, height=h, where=name, extra={"split": split}))
        lp = label_path(ip)
        if not lp.is_file():  # Ultralytics' negative: the builder keeps it only with --keep-empty
            continue
        lfile = str(lp)
        for ln, line in enumerate(read_text(lp).splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            vals = _label_values(parts, n_vals, K, D, names, lfile, f"line {ln}")
            if int(vals[0]) != cls:
                other_classes += 1
                continue
            report.instances_read += 1
            box, kp = _instance(vals, K, D, w, h, report, f"{name}:{ln}")
            builder.add_instance(RawInstance(image_key=key, keypoints=kp[mapping], bbox=box,
                                             source_id=f"{name}:{ln}", where=f"{lfile}: line {ln}"))
    if other_classes:
        report.skip(f"instance of another class than {names[cls]!r}", n=other_classes)
    report.images_read = len(imgs)
    return builder.build()


def _label_values(parts: list[str], n_vals: int, K: int, D: int, names: dict[int, str], lfile: str,
                  where: str) -> np.ndarray:
    """One label line's numbers: class, box, keypoints; a known class, every value finite."""
    if len(parts) != n_vals:
        raise InputError(f"expected {n_vals} values (class, box 4, {K} keypoints x {D}), found {len(parts)}",
                         file=lfile, where=where)
    try:
        vals = np.array([float(v) for v in parts])
    except ValueError:
        raise InputError("expected numbers", file=lfile, where=where) from None
    if not np.isfinite(vals).all():
        raise InputError("values must be finite", file=lfile, where=where)
    c = vals[0]
    if c != int(c) or int(c) not in names:
        raise InputError(f"class {parts[0]!r} is not one of {sorted(names)}", file=lfile, where=where)
    return vals


def _instance(vals: np.ndarray, K: int, D: int, w: float, h: float, report: ImportReport,
              source: str) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """(box, (K, 3) keypoints) in pixels from a line's normalised values; without a visibility
    column a point at (0, 0) is unlabelled."""
    cx, cy, bw, bh = vals[1:5]
    box = ((cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h)
    k = vals[5:].reshape(K, D)
    kp = np.zeros((K, 3))
    kp[:, 0], kp[:, 1] = k[:, 0] * w, k[:, 1] * h
    if D == 3:
        kp[:, 2] = k[:, 2]
        nonstd = ~np.isin(k[:, 2], (0, 1, 2))
        if nonstd.any():
            report.repair("visibility other than 0/1/2 read as labelled (v=2) when > 0", source,
                          n=int(nonstd.sum()))
            kp[nonstd, 2] = np.where(k[nonstd, 2] > 0, 2, 0)
    else:
        kp[:, 2] = np.where((k[:, 0] == 0) & (k[:, 1] == 0), 0, 2)
    kp[kp[:, 2] == 0] = 0
    return box, kp


# ------------------------------------------------------------- skeleton init
def skeleton_from_yaml(path: Path, category: str | None = None, edges: bool = True) -> tuple[dict[str, Any], list[str]]:
    """A starting skeleton dict from a YOLO-pose dataset YAML (names, flip pairs, and limbs from a
    `skeleton:` edge list when the YAML has one), plus notes. Ultralytics itself reads no edges;
    datasets that carry them write index pairs (read as COCO's `skeleton` is: 1-based unless they
    use 0 and never K) or name pairs, as one list or per class id like `kpt_names`."""
    file = str(path)
    data = _load_yaml(Path(path))
    K, _ = kpt_shape(data, file)
    names = class_names(data, file)
    cls = _choose_class(names, category, file)
    kn = keypoint_names(data, cls, K, file)
    notes = []
    if kn is None:
        kn = [f"kp{i}" for i in range(K)]
        notes.append(f"the YAML has no kpt_names: keypoints are named kp0..kp{K - 1}; rename them (in YOLO's order)")
    if len({normalize_name(n) for n in kn}) != K:
        raise InputError(f"keypoint names repeat: {kn}", file=file, where="kpt_names")
    fi = flip_idx(data, K, file)
    flip = [[kn[i], kn[j]] for i, j in enumerate(fi) if i < j] if fi is not None else []
    if fi is None:
        from ..sides import guess_flip_pairs

        flip = [list(p) for p in guess_flip_pairs(kn)]
        notes.append(f"the YAML has no flip_idx: {len(flip)} flip pair(s) guessed from the keypoint names; "
                     "review them" if flip else "the YAML has no flip_idx and no names look left/right: the flip "
                     "map is empty; add left/right pairs")
    limbs: list[list[str]] = []
    raw = data.get("skeleton")
    if isinstance(raw, dict):  # per class, as kpt_names
        raw = raw.get(cls, raw.get(str(cls)))
    if raw is None:
        notes.append("the YAML has no skeleton edge list: add limbs that connect every keypoint to the root")
    elif not edges:
        notes.append("the YAML's skeleton edges were left out (--ignore-edges): add limbs that connect every "
                     "keypoint to the root")
    else:
        from ..skeleton import coco_edges

        if isinstance(raw, list) and raw and all(isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)
                                                 for e in raw):
            pos = {normalize_name(n): i + 1 for i, n in enumerate(kn)}
            unknown = [x for e in raw for x in e if normalize_name(x) not in pos]
            if unknown:
                raise InputError(f"skeleton edges name keypoints that kpt_names lacks: {unknown}; correct them, or pass "
                                 "--ignore-edges", file=file, where="skeleton")
            raw = [[pos[normalize_name(a)], pos[normalize_name(b)]] for a, b in raw]
        limbs, edge_notes = coco_edges(kn, raw, file, "skeleton")
        notes += edge_notes
        if limbs:
            notes.append(f"{len(limbs)} limb(s) from the YAML's skeleton edge list")
    d = {
        "name": str(names[cls]),
        "keypoints": kn,
        "limbs": limbs,
        "root": guess_root(kn, limbs),
        "flip": flip,
        "sigmas": [0.05] * K,
    }
    return d, notes


# ----------------------------------------------------------------------- export
@dataclass
class ExportReport:
    images: int = 0
    instances: int = 0
    keypoints: int = 0
    images_copied: int = 0
    boxes_from_keypoints: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # what -> count
    notes: list[str] = field(default_factory=list)

    def drop(self, what: str, n: int = 1) -> None:
        self.dropped[what] = self.dropped.get(what, 0) + n


def export_order(sk: Skeleton) -> tuple[list[str], list[int]]:
    """The exported keypoint order (the skeleton's source order, as a COCO file carries it) and the
    flip_idx in that order."""
    order = list(sk.coco_keypoints)
    return order, _flip_in_order(sk, order)


def yolo_lines(kps: np.ndarray, boxes: np.ndarray, sizes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Label lines for N instances (class 0): kps (N, K, 3) COCO visibility, boxes (N, 4) x, y, w, h,
    sizes (N, 2) image width, height. Returns the lines and an (N, K) mask of labelled keypoints
    dropped because they lie outside the image."""
    kps = np.asarray(kps, dtype=np.float64)
    if len(kps) == 0:  # an image without instances: YOLO's negative, an empty label file
        return [], np.zeros((0, kps.shape[1] if kps.ndim == 3 else 0), dtype=bool)
    wh = np.asarray(sizes, dtype=np.float64)[:, None, :]
    lab = kps[:, :, 2] > 0
    xy = kps[:, :, :2] / wh
    inside = (xy >= 0).all(-1) & (xy <= 1).all(-1) & np.isfinite(xy).all(-1)
    outside = lab & ~inside
    keep = lab & inside
    v = np.where(keep, np.clip(kps[:, :, 2], 1, 2), 0)
    xy = np.where(keep[..., None], xy, 0.0)
    b = np.asarray(boxes, dtype=np.float64)
    W, H = wh[:, 0, 0], wh[:, 0, 1]
    x0, y0 = np.clip(b[:, 0], 0, W), np.clip(b[:, 1], 0, H)
    x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, W), np.clip(b[:, 1] + b[:, 3], 0, H)
    box = np.stack([(x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H], axis=1)
    # one printf-style format per line: x y v repeated K times after the class and box
    fmt = "0 %.6f %.6f %.6f %.6f" + " %.6f %.6f %d" * kps.shape[1]
    rows = np.concatenate([box, np.concatenate([xy, v[..., None]], axis=2).reshape(len(kps), -1)], axis=1)
    return [fmt % tuple(r) for r in rows.tolist()], outside


def export(ds: Any, sk: Skeleton, out_dir: Path, images: Path | None = None, category_id: int | None = None,
           data_file: str | None = None, bbox_margin: float = 0.1, progress: Any = None) -> ExportReport:
    """Write a YOLO-pose dataset for `ds` (a posedata.coco.Dataset) into out_dir.

    Layout: images/<file_name> (hard links, else copies, when `images` is given), labels/<file_name
    with .txt>, data.yaml. Everything is written into a temporary sibling folder that replaces
    out_dir only when complete, so a failure never leaves a half-written dataset. An existing
    out_dir is replaced only if `export yolo` made it (io.MARKER); the caller decides whether
    replacing is allowed at all (io.claim_output with --force)."""
    rep = ExportReport()
    cat = ds.category(category_id)
    order, fidx = export_order(sk)
    cols = _keypoint_columns(list(cat.keypoints), order, sk, data_file)
    # every check that can fail runs before anything is written
    by_image = _instances_by_image(ds, cat, len(cat.keypoints), rep, data_file)
    names, sources = _image_files(ds, images, data_file)
    out_dir = Path(out_dir)
    check_replaceable(out_dir, COMMAND)
    with staged_dir(out_dir, COMMAND) as tmp:
        for n_img, im in enumerate(ds.images):
            _write_image(tmp, im, by_image[im.id], cols, names[im.id], sources.get(im.id), bbox_margin, rep)
            if progress is not None:
                progress(n_img + 1, len(ds.images))
        (tmp / "data.yaml").write_text(_dataset_yaml(out_dir, sk, cat.name, order, fidx, data_file))
    if images is None:
        rep.notes.append(f"no --images: put the images in {out_dir / 'images'} under their file_name for "
                         "Ultralytics to find them")
    return rep


def _keypoint_columns(src: list[str], order: list[str], sk: Skeleton, data_file: str | None) -> np.ndarray:
    """For each keypoint in export order, its column in the data's keypoint list (names matched)."""
    lookup: dict[str, int] = {}
    for i, n in enumerate(src):
        lookup.setdefault(normalize_name(n), i)
    missing = [n for n in order if normalize_name(n) not in lookup]
    if missing:
        raise InputError(f"the data's keypoints {src} lack skeleton keypoint(s) {missing}", file=data_file,
                         where="categories")
    extra = [n for n in src if normalize_name(n) not in {normalize_name(o) for o in order}]
    if extra:
        raise InputError(f"the data has keypoint(s) {extra} that skeleton {sk.name!r} does not know", file=data_file,
                         where="categories")
    return np.array([lookup[normalize_name(n)] for n in order])


def _instances_by_image(ds: Any, cat: Any, n_src: int, rep: ExportReport, data_file: str | None) -> dict[int, list[Any]]:
    """The category's instances per image id; crowd regions dropped, box-only ones given unlabelled keypoints."""
    by_image: dict[int, list[Any]] = {im.id: [] for im in ds.images}
    for a in ds.annotations:
        if a.category_id != cat.id:
            continue
        if a.iscrowd:
            rep.drop("crowd region (YOLO has no crowd masks)")
            continue
        if a.image_id not in by_image:
            raise InputError(f"annotation {a.id} refers to image {a.image_id}, which is not in the data",
                             file=data_file, where="annotations")
        if a.keypoints is None:  # a box-only annotation: a YOLO line with every keypoint unlabelled
            a = copy.copy(a)
            a.keypoints = np.zeros((n_src, 3))
        elif a.keypoints.shape != (n_src, 3):
            raise InputError(f"annotation {a.id}: expected {n_src} keypoints, got {len(a.keypoints)}",
                             file=data_file, where="annotations")
        by_image[a.image_id].append(a)
    return by_image


def _image_files(ds: Any, images: Path | None, data_file: str | None) -> tuple[dict[int, str], dict[int, Path]]:
    """Each image's relative name (its label file is named after it) and, with --images, its file."""
    sources: dict[int, Path] = {}
    names: dict[int, str] = {}
    for im in ds.images:
        rel = PurePosixPath(im.file_name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.name:
            raise InputError(f"image file_name {im.file_name!r} must be a relative path inside the images folder",
                             file=data_file, where=f"image {im.id}")
        names[im.id] = rel.as_posix()
        if images is not None:
            p = safe_image_path(images, rel.as_posix())
            if not p.is_file():
                raise InputError(f"image {im.file_name!r} not found under {images}", file=data_file, where=f"image {im.id}")
            sources[im.id] = p
        if im.width <= 0 or im.height <= 0:
            raise InputError(f"image {im.id} has no valid width/height", file=data_file, where=f"image {im.id}")
    if len(set(names.values())) != len(names):
        raise InputError("two images share a file_name; YOLO label files are named after the image",
                         file=data_file, where="images")
    return names, sources


def _write_image(tmp: Path, im: Any, anns: list[Any], cols: np.ndarray, name: str, source: Path | None,
                 bbox_margin: float, rep: ExportReport) -> None:
    """One image's label file (a box from the keypoints where the instance has none) and its image."""
    from .builder import bboxes_from_keypoints

    kps = np.stack([a.keypoints[cols] for a in anns]) if anns else np.zeros((0, len(cols), 3))
    boxes = np.zeros((len(anns), 4))
    sizes = np.tile([im.width, im.height], (len(anns), 1)).astype(np.float64)
    need = []
    for i, a in enumerate(anns):
        b = a.bbox
        if b is not None and b[2] > 0 and b[3] > 0:
            boxes[i] = b
        else:
            need.append(i)
    if need:
        kb, ok = bboxes_from_keypoints(kps[need], sizes[need], bbox_margin)
        for i, row, good in zip(need, kb, ok, strict=True):
            boxes[i] = row
            rep.boxes_from_keypoints += int(bool(good))
    valid = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if (~valid).any():
        rep.drop("instance with no box and no labelled keypoint", int((~valid).sum()))
    lines, outside = yolo_lines(kps[valid], boxes[valid], sizes[valid])
    if outside.any():
        rep.drop("labelled keypoint outside the image written as unlabelled", int(outside.sum()))
    rep.instances += len(lines)
    rep.keypoints += int((kps[valid][:, :, 2] > 0).sum() - outside.sum())
    lp = tmp / "labels" / PurePosixPath(name).with_suffix(".txt")
    lp.parent.mkdir(parents=True, exist_ok=True)
    lp.write_text("".join(line + "\n" for line in lines))
    if source is not None:
        dst = tmp / "images" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, dst)
        except OSError:
            shutil.copy2(source, dst)
        rep.images_copied += 1
    rep.images += 1


def _dataset_yaml(out_dir: Path, sk: Skeleton, cls_name: str, order: list[str], fidx: list[int],
                  data_file: str | None) -> str:
    from ..skeleton import dump_yaml

    d = {
        "path": str(out_dir.resolve()),
        "train": "images",
        "val": "images",
        "kpt_shape": [len(order), 3],
        "flip_idx": fidx,
        "names": {0: cls_name},
        "kpt_names": {0: order},
    }
    head = (f"# YOLO-pose dataset written by `posedata export yolo`{f' from {Path(data_file).name}' if data_file else ''}\n"
            f"# skeleton {sk.name} (fingerprint {sk.fingerprint}); flip_idx is its flip map in kpt_names order.\n"
            "# train and val are the same images: split them before training for a held-out score.\n")
    return head + dump_yaml(d)
