"""The import builder and the reads every format reader shares: one cached JSON parse, keypoint
name matching against a skeleton, boxes from keypoints, and DatasetBuilder, which turns a tool's
images and instances into a clean Dataset with every repair counted.

The format readers (posedata/formats/<format>.py) build on this module; the registry and the
runner that choose a reader (posedata/importer.py) sit above them.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from ..coco import Annotation, Category, Dataset, Image
from ..errors import DataError, InputError
from ..images import image_header
from ..io import load_json, safe_image_path
from ..skeleton import Skeleton, normalize_name
from .base import ImportOptions, ImportReport, ImportResult

# ------------------------------------------------------------- shared reads
_json_cache: dict[tuple[str, int, int], Any] = {}


def read_json(path: str | os.PathLike) -> Any:
    """load_json with a one-file cache: auto-detection and the reader parse the same file once."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return load_json(p)
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _json_cache:
        _json_cache.clear()
        _json_cache[key] = load_json(p)
    return _json_cache[key]


@contextmanager
def known_json(path: str | os.PathLike, data: Any) -> Iterator[None]:
    """Inside the block, read_json(path) returns `data`, JSON the caller already parsed from that
    file: detection and the format reader then cost no second parse of a large file (convert and
    validate hold the parse already). On exit the entry is dropped, so the cache does not keep a
    large parse alive after the caller lets it go."""
    p = Path(path)
    st = p.stat()
    saved = dict(_json_cache)
    _json_cache.clear()
    _json_cache[(str(p.resolve()), st.st_mtime_ns, st.st_size)] = data
    try:
        yield
    finally:
        _json_cache.clear()
        _json_cache.update(saved)


def peek_text(path: Path, n: int = 4096) -> str:
    """The first n bytes as text, for cheap content sniffing (never raises on binary)."""
    try:
        with open(path, "rb") as f:
            return f.read(n).decode("utf-8-sig", errors="replace")
    except OSError:
        return ""


# -------------------------------------------------------------- name matching
def keypoint_mapping(names: list[str] | tuple[str, ...], skeleton: Skeleton, file: str | None = None,
                     where: str | None = None) -> np.ndarray:
    """For each output slot (skeleton.coco_keypoints order), its index in the export's `names`.

    Names match case and separator tolerantly, by the skeleton's source name or its own name.
    Raises InputError listing every export name the skeleton lacks and every skeleton keypoint the
    export lacks, since an import by position would silently swap body parts."""
    targets = list(skeleton.coco_keypoints)
    aliases: list[set[str]] = [{normalize_name(t)} for t in targets]
    try:
        own = skeleton.source_index(targets)
        for i, j in enumerate(own.tolist()):
            if j >= 0:
                aliases[j].add(normalize_name(skeleton.keypoints[i]))
    except InputError:
        pass
    lookup: dict[str, int] = {}
    dup: list[str] = []
    for i, n in enumerate(names):
        k = normalize_name(n)
        if k in lookup:
            dup.append(str(n))
        lookup.setdefault(k, i)
    if dup:
        raise InputError(f"keypoint names repeat (case and separators ignored): {dup}", file=file, where=where)
    out = np.full(len(targets), -1, dtype=np.int64)
    missing = []
    for j, al in enumerate(aliases):
        hit = [lookup[a] for a in al if a in lookup]
        if hit:
            out[j] = min(hit)
        else:
            missing.append(targets[j])
    used = set(out.tolist())
    unknown = [str(n) for i, n in enumerate(names) if i not in used]
    if missing or unknown:
        parts = []
        if unknown:
            parts.append(f"export keypoint(s) not in skeleton {skeleton.name!r}: {unknown}")
        if missing:
            parts.append(f"skeleton keypoint(s) missing from the export: {missing}")
        raise InputError("; ".join(parts) + " (names match case and separator tolerantly; add them to the "
                         "skeleton or map them under source.names)", file=file, where=where)
    return out


def keypoint_slots(skeleton: Skeleton) -> dict[str, int]:
    """Normalised name -> output slot (skeleton.coco_keypoints order), by source and own names.
    For formats that carry no list of keypoint names, only the names each point was labelled with."""
    targets = list(skeleton.coco_keypoints)
    slots = {normalize_name(t): j for j, t in enumerate(targets)}
    try:
        for i, j in enumerate(skeleton.source_index(targets).tolist()):
            if j >= 0:
                slots.setdefault(normalize_name(skeleton.keypoints[i]), j)
    except InputError:
        pass
    return slots


def unknown_names_error(unknown: list[str], skeleton: Skeleton, file: str | None, where: str | None) -> InputError:
    return InputError(f"keypoint name(s) not in skeleton {skeleton.name!r}: {sorted(set(unknown))} (skeleton: "
                      f"{list(skeleton.coco_keypoints)}; names match case and separator tolerantly; add them to the "
                      "skeleton or map them under source.names)", file=file, where=where)


def category_limbs(skeleton: Skeleton) -> list[list[int]]:
    """The skeleton's limbs as 1-based COCO pairs into coco_keypoints; limbs touching a derived
    keypoint have no COCO slot and are left out."""
    idx = skeleton.source_index(list(skeleton.coco_keypoints))
    out = []
    for a, b in skeleton.limbs:
        ia, ib = int(idx[a]), int(idx[b])
        if ia >= 0 and ib >= 0:
            out.append([ia + 1, ib + 1])
    return out


def bboxes_from_keypoints(kps: np.ndarray, sizes: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes around the labelled keypoints of N instances at once.

    kps (N, K, 3) COCO visibility; sizes (N, 2) image width, height. Each box is the labelled
    points' extent padded by `margin` times that extent on each side (at least 1 px across, so a
    single point still gets a box), clipped to the image. Returns (N, 4) x, y, w, h and a (N,)
    mask of instances that had any labelled keypoint."""
    kps = np.asarray(kps, dtype=np.float64)
    if kps.size == 0:
        return np.zeros((len(kps), 4)), np.zeros(len(kps), dtype=bool)
    kps = kps.reshape(len(kps), -1, 3)
    lab = (kps[:, :, 2] > 0) & np.isfinite(kps[:, :, 0]) & np.isfinite(kps[:, :, 1])
    ok = lab.any(axis=1)
    x = np.where(lab, kps[:, :, 0], np.nan)
    y = np.where(lab, kps[:, :, 1], np.nan)
    out = np.zeros((len(kps), 4), dtype=np.float64)
    if not ok.any():
        return out, ok
    with np.errstate(invalid="ignore"):
        x0, x1 = np.nanmin(x[ok], axis=1), np.nanmax(x[ok], axis=1)
        y0, y1 = np.nanmin(y[ok], axis=1), np.nanmax(y[ok], axis=1)
    px, py = (x1 - x0) * margin, (y1 - y0) * margin
    x0, x1, y0, y1 = x0 - px, x1 + px, y0 - py, y1 + py
    # a lone point (or a line of points) still needs a box with an area
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0, x1 = np.minimum(x0, cx - 0.5), np.maximum(x1, cx + 0.5)
    y0, y1 = np.minimum(y0, cy - 0.5), np.maximum(y1, cy + 0.5)
    w, h = sizes[ok, 0].astype(np.float64), sizes[ok, 1].astype(np.float64)
    x0, x1 = np.clip(x0, 0, w), np.clip(x1, 0, w)
    y0, y1 = np.clip(y0, 0, h), np.clip(y1, 0, h)
    out[ok] = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    return np.round(out, 2), ok


def polygon_bbox_area(seg: Any) -> tuple[tuple[float, float, float, float], float] | None:
    """Box and area of a COCO polygon segmentation (list of flat x, y lists); None if not one."""
    if not isinstance(seg, list) or not seg:
        return None
    polys = []
    for p in seg:
        if not isinstance(p, list) or len(p) < 6 or len(p) % 2:
            return None
        try:
            a = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            return None
        if not np.isfinite(a).all():
            return None
        polys.append(a)
    allp = np.concatenate(polys)
    x0, y0 = allp.min(axis=0)
    x1, y1 = allp.max(axis=0)
    area = 0.0
    for a in polys:  # shoelace; several parts of one object add up
        area += 0.5 * abs(float(np.dot(a[:, 0], np.roll(a[:, 1], -1)) - np.dot(a[:, 1], np.roll(a[:, 0], -1))))
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0)), area


def path_tails(p: str) -> list[str]:
    """'/srv/datasets/cats/a/b.jpg' -> ['srv/datasets/cats/a/b.jpg', ..., 'a/b.jpg', 'b.jpg'],
    longest first, for finding a server path's file under a local images folder."""
    parts = [x for x in PureWindowsPath(p).parts if x not in ("/", "\\")] if "\\" in p else \
        [x for x in PurePosixPath(p).parts if x != "/"]
    parts = [x for x in parts if not (len(x) >= 2 and x[1] == ":")]  # drop a drive
    parts = [x for x in parts if x not in ("", ".", "..")]
    return ["/".join(parts[i:]) for i in range(len(parts))]


# ---------------------------------------------------------------- the builder
@dataclass
class RawImage:
    key: Any  # the export's own image id (any hashable)
    file_name: str
    width: Any = None
    height: Any = None
    candidates: list[str] = field(default_factory=list)  # other names/paths to try under --images
    where: str | None = None  # location in the export, for messages
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawInstance:
    image_key: Any
    keypoints: np.ndarray | None  # (K, 3) in skeleton.coco_keypoints order, COCO visibility
    bbox: Any = None
    area: Any = None
    iscrowd: bool = False
    segmentation: Any = None
    source_id: Any = None  # the export's id, used in report examples and kept when it is a unique int
    where: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    num_keypoints: Any = None  # the export's own num_keypoints (None: it has no such field)


def _finite_box(b: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(b, (list, tuple)) or len(b) != 4:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in b):
        return None
    try:
        t = tuple(float(v) for v in b)
    except OverflowError:  # an integer beyond float range
        return None
    return t if all(np.isfinite(t)) else None  # type: ignore[return-value]


def _pos_int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)  # np.isfinite raises TypeError on an integer beyond float range
    except OverflowError:
        return None
    if not np.isfinite(f) or f <= 0:
        return None
    return int(round(f)) if abs(f - round(f)) < 1e-6 else None


class DatasetBuilder:
    """Collects an export's images and instances, then applies the shared repairs in build()."""

    def __init__(self, skeleton: Skeleton, options: ImportOptions, report: ImportReport, file: str,
                 category_id: Any = 1, category_name: str | None = None, supercategory: str = ""):
        self.skeleton = skeleton
        self.options = options
        self.report = report
        self.file = file
        self.K = len(skeleton.coco_keypoints)
        self.category_id = category_id
        self.category_name = category_name or skeleton.name
        self.supercategory = supercategory
        self.images: list[RawImage] = []
        self.instances: list[RawInstance] = []
        self.info: dict[str, Any] = {}
        self.licenses: list[Any] = []

    def add_image(self, image: RawImage) -> None:
        self.images.append(image)

    def add_instance(self, inst: RawInstance) -> None:
        self.instances.append(inst)

    # ------------------------------------------------------------ images
    def _resolve_images(self) -> dict[Any, tuple[str, int, int]]:
        """image key -> (file_name for the output, width, height). Missing files are an error
        when --images is given; sizes come from the export, else from the image header."""
        root = self.options.images
        if root is not None and not Path(root).is_dir():
            raise InputError("images folder not found", file=str(root))
        out: dict[Any, tuple[str, int, int]] = {}
        missing: list[tuple[str, str | None]] = []
        wanted = {inst.image_key for inst in self.instances}
        for im in self.images:
            if im.key not in wanted and not self.options.keep_empty:
                out[im.key] = (im.file_name, 0, 0)  # dropped in build(); its file and size never matter
                continue
            name = im.file_name
            found: Path | None = None
            if root is not None:
                tried: list[str] = []
                for cand in [im.file_name, *im.candidates]:
                    if not isinstance(cand, str) or not cand:
                        continue
                    for t in ([cand] if not os.path.isabs(cand) and "\\" not in cand else []) + path_tails(cand):
                        if t in tried:
                            continue
                        tried.append(t)
                        try:
                            p = safe_image_path(root, t)
                        except InputError:
                            continue
                        if p.is_file():
                            found, name = p, t
                            break
                    if found is not None:
                        break
                if found is None:
                    missing.append((im.file_name, im.where))
                    continue
                if name != im.file_name:
                    self.report.repair("image file_name resolved under --images (by file name or tail of path)",
                                       f"{im.file_name} -> {name}")
            w, h = _pos_int(im.width), _pos_int(im.height)
            if found is not None:
                if w is None or h is None:
                    w, h = image_header(found).size
                    self.report.repair("image width/height read from the image file", name)
                elif self.options.images is not None:
                    fw, fh = image_header(found).size
                    if (fw, fh) != (w, h):
                        self.report.warnings.append(
                            f"image {name}: the export says {w}x{h} but the file is {fw}x{fh}; kept the export's size")
            elif w is None or h is None:
                raise InputError(f"image size unknown (width {im.width!r}, height {im.height!r}); pass --images "
                                 "so it can be read from the file", file=self.file, where=im.where)
            out[im.key] = (name, w, h)
        if missing:
            ex = ", ".join(f"{n!r}" + (f" ({w})" if w else "") for n, w in missing[:5])
            # the data's fault, not the command's: the same verdict as validate's V050 (exit 1)
            raise DataError(f"V050 {len(missing)} image(s) not found under --images {str(root)!r} by file name or "
                             f"tail of path: {ex}{' ...' if len(missing) > 5 else ''}", file=self.file,
                             where=missing[0][1])
        return out

    # ------------------------------------------------------------ build
    def build(self) -> ImportResult:
        """The Dataset: every repair that must be the same for all tools, each one counted."""
        rep, opts = self.report, self.options
        sizes = self._resolve_images()
        rep.images_read = rep.images_read or len(self.images)
        insts: list[RawInstance] = []
        for inst in self.instances:
            if inst.image_key not in sizes:
                rep.skip("annotation refers to an image id that is not in the export", inst.source_id)
                continue
            insts.append(inst)
        kps = self._keypoints(insts)
        keep = np.ones(len(insts), dtype=bool)
        if opts.drop_unlabelled:
            crowd = np.array([bool(i.iscrowd) for i in insts], dtype=bool)
            drop = ((kps[:, :, 2] > 0).sum(axis=1) == 0) & ~crowd
            for n in np.flatnonzero(drop):
                rep.skip("instance with no labelled keypoints (--drop-unlabelled)", insts[n].source_id)
            keep &= ~drop
        # boxes: keep a usable one (clipped to the image), else keypoints, else the polygon
        img_wh = np.array([[sizes[i.image_key][1], sizes[i.image_key][2]] for i in insts],
                          dtype=np.float64).reshape(-1, 2)
        kp_boxes, has_kp = bboxes_from_keypoints(kps, img_wh, opts.bbox_margin)
        boxes: list[tuple[float, float, float, float] | None] = [None] * len(insts)
        areas: list[float | None] = [None] * len(insts)
        for n, inst in enumerate(insts):
            if keep[n]:
                placed = self._box_and_area(inst, img_wh[n], kp_boxes[n] if has_kp[n] else None)
                if placed is None:
                    keep[n] = False
                else:
                    boxes[n], areas[n] = placed
        ds = self._dataset(insts, kps, [n for n in range(len(insts)) if keep[n]], boxes, areas, sizes)
        rep.images_written = len(ds.images)
        rep.instances_written = len(ds.annotations)
        return ImportResult(dataset=ds, report=rep)

    def _keypoints(self, insts: list[RawInstance]) -> np.ndarray:
        """(N, K, 3) keypoints of the instances, repaired: unusable coordinates on a labelled point
        mean it is not labelled, a visibility outside 0/1/2 is labelled, v=0 sits at (0, 0)."""
        rep, K = self.report, self.K
        kps = np.zeros((len(insts), K, 3), dtype=np.float64)
        no_kp: list[int] = []
        for n, inst in enumerate(insts):
            if inst.keypoints is None:
                if not inst.iscrowd:
                    no_kp.append(n)
                continue
            k = np.asarray(inst.keypoints, dtype=np.float64)
            if k.shape != (K, 3):
                raise InputError(f"internal: keypoints shape {k.shape}, expected {(K, 3)}", file=self.file,
                                 where=inst.where)
            kps[n] = k
        for n in no_kp:
            rep.repair("annotation without keypoints kept as a zero-keypoint instance", insts[n].source_id)
        lab = kps[:, :, 2] > 0
        bad = lab & ~(np.isfinite(kps[:, :, 0]) & np.isfinite(kps[:, :, 1]))
        if bad.any():
            for n in np.flatnonzero(bad.any(axis=1)):
                rep.repair("labelled keypoint without finite coordinates set to unlabelled", insts[n].source_id,
                           n=int(bad[n].sum()))
            kps[bad] = 0.0
        vis = kps[:, :, 2]
        badv = ~np.isin(vis, (0, 1, 2))
        if badv.any():
            for n in np.flatnonzero(badv.any(axis=1)):
                rep.repair("keypoint visibility outside 0/1/2 set to 2 (labelled)", insts[n].source_id,
                           n=int(badv[n].sum()))
            kps[:, :, 2] = np.where(badv, np.where(vis > 0, 2.0, 0.0), vis)
        unl = (kps[:, :, 2] == 0) & ((kps[:, :, 0] != 0) | (kps[:, :, 1] != 0))
        if unl.any():
            for n in np.flatnonzero(unl.any(axis=1)):
                rep.repair("unlabelled keypoint (v=0) with coordinates set to (0, 0, 0)", insts[n].source_id,
                           n=int(unl[n].sum()))
            kps[unl] = 0.0
        return kps

    def _box_and_area(self, inst: RawInstance, wh: np.ndarray, kp_box: np.ndarray | None
                      ) -> tuple[tuple[float, float, float, float], float] | None:
        """(bbox, area) of an instance: its own box clipped to the image, else the labelled
        keypoints' box, else the polygon's; None (skipped) when none of them exists."""
        rep, opts = self.report, self.options
        if not _json_ok(inst.segmentation):
            raise InputError("segmentation holds values JSON cannot carry (NaN, Infinity or non-JSON types)",
                             file=self.file, where=f"{inst.where}.segmentation" if inst.where else None)
        W, H = wh
        b = _finite_box(inst.bbox)
        poly = polygon_bbox_area(inst.segmentation)
        if b is not None and b[2] > 0 and b[3] > 0:
            x0, y0 = max(b[0], 0.0), max(b[1], 0.0)
            x1, y1 = min(b[0] + b[2], W), min(b[1] + b[3], H)
            if (x0, y0, x1, y1) != (b[0], b[1], b[0] + b[2], b[1] + b[3]):
                if x1 > x0 and y1 > y0:
                    rep.repair("bbox clipped to the image", inst.source_id)
                    b = (x0, y0, x1 - x0, y1 - y0)
                else:
                    b = None
        else:
            b = None
        area_given = inst.area if isinstance(inst.area, (int, float)) and not isinstance(inst.area, bool) \
            and np.isfinite(inst.area) and inst.area > 0 else None
        if b is None:
            if kp_box is not None and kp_box[2] > 0 and kp_box[3] > 0:
                b = tuple(float(v) for v in kp_box)  # type: ignore[assignment]
                rep.repair(f"bbox computed from labelled keypoints (margin {opts.bbox_margin:g}, clipped to "
                           "the image; was missing or empty)", inst.source_id)
                if poly is None:
                    area_given = None  # the export's area belonged to no box; use the new box's
            elif poly is not None and poly[0][2] > 0 and poly[0][3] > 0:
                b = poly[0]
                rep.repair("bbox computed from the polygon (was missing or empty)", inst.source_id)
            else:
                rep.skip("no usable bbox, labelled keypoint or polygon to place the instance", inst.source_id)
                return None
        if area_given is None:
            if poly is not None and poly[1] > 0:
                area_given = poly[1]
                rep.repair("area computed from the polygon (was missing or 0)", inst.source_id)
            else:
                area_given = b[2] * b[3]
                rep.repair("area set to the bbox area (was missing or 0)", inst.source_id)
        return b, float(area_given)

    def _dataset(self, insts: list[RawInstance], kps: np.ndarray, kept: list[int], boxes: list, areas: list,
                 sizes: dict[Any, tuple[str, int, int]]) -> Dataset:
        """The kept instances and their images as a Dataset; ids: the export's when they are unique
        integers, else numbered from 1."""
        rep, opts, K = self.report, self.options, self.K
        used_images = {insts[n].image_key for n in kept}
        img_keep = [im for im in self.images if im.key in used_images or opts.keep_empty]
        for im in self.images:
            if im.key not in used_images and not opts.keep_empty:
                rep.skip("image with no annotations (pass --keep-empty to keep it as a negative)", im.key)
        img_ids = _ids([im.key for im in img_keep])
        if img_ids is None:
            rep.repair("image ids renumbered from 1 (the export's were not unique positive integers)")
            img_ids = list(range(1, len(img_keep) + 1))
        img_id_of = {im.key: i for im, i in zip(img_keep, img_ids, strict=True)}
        ann_ids = _ids([insts[n].source_id for n in kept])
        if ann_ids is None:
            ann_ids = list(range(1, len(kept) + 1))
        ds, cat_id = self._empty_dataset()
        for im in img_keep:
            name, w, h = sizes[im.key]
            extra = {k: v for k, v in im.extra.items() if _json_ok(v)}
            ds.images.append(Image(id=img_id_of[im.key], file_name=name, width=w, height=h, extra=extra))
        for aid, n in zip(ann_ids, kept, strict=True):
            inst = insts[n]
            k = kps[n]
            if inst.iscrowd:
                k = np.zeros((K, 3))
            nk = int((k[:, 2] > 0).sum())
            if inst.num_keypoints is None:
                rep.repair("num_keypoints added (the number of labelled keypoints; the export has none)", inst.source_id)
            elif isinstance(inst.num_keypoints, bool) or inst.num_keypoints != nk:
                rep.repair("num_keypoints recomputed from the keypoints", inst.source_id)
            ds.annotations.append(Annotation(
                id=aid, image_id=img_id_of[inst.image_key], category_id=cat_id, keypoints=k,
                bbox=boxes[n], area=areas[n], iscrowd=bool(inst.iscrowd),
                segmentation=inst.segmentation if inst.segmentation not in (None, {}) else [],
                num_keypoints=nk,
                extra={k2: v for k2, v in inst.extra.items() if _json_ok(v)}))
        return ds

    def _empty_dataset(self) -> tuple[Dataset, int]:
        """A Dataset with the export's info and licenses (when JSON can carry them) and the one
        category; and that category's id."""
        rep = self.report
        cat_id = self.category_id if isinstance(self.category_id, int) and not isinstance(self.category_id, bool) \
            and self.category_id > 0 else 1
        info, licenses = self.info, self.licenses
        if not _json_ok(info) or not isinstance(info, dict):
            rep.warnings.append("the export's `info` holds values JSON cannot carry (NaN, Infinity); left out")
            info = {}
        if not _json_ok(licenses) or not isinstance(licenses, list):
            rep.warnings.append("the export's `licenses` holds values JSON cannot carry (NaN, Infinity); left out")
            licenses = []
        ds = Dataset(info=info, licenses=licenses, file=self.file)
        ds.categories.append(Category(id=cat_id, name=str(self.category_name),
                                      keypoints=list(self.skeleton.coco_keypoints),
                                      skeleton=category_limbs(self.skeleton), supercategory=self.supercategory))
        return ds, cat_id


def _json_ok(v: Any) -> bool:
    """True when v can be written as strict JSON (no NaN/Infinity, only JSON types)."""
    import json

    try:
        json.dumps(v, allow_nan=False)
        return True
    except (ValueError, TypeError, RecursionError):
        return False


def _ids(keys: list[Any]) -> list[int] | None:
    if all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in keys) and len(set(keys)) == len(keys):
        return list(keys)
    return None


def resolve_category(categories: list[tuple[str, Any, Any]], wanted: str | None, file: str | None,
                     where: str | None = None) -> int:
    """Index of the chosen keypoint category among (location, id, name) candidates.

    `wanted` matches an id (as text) or a name (case and separator tolerant); without it there
    must be exactly one keypoint category."""
    if wanted is None:
        if len(categories) == 1:
            return 0
        listing = ", ".join(f"{c[1]} ({c[2]!r})" for c in categories) or "none"
        raise InputError(f"{'no' if not categories else len(categories)} keypoint categories "
                         f"(found: {listing}); choose one with --category NAME_OR_ID", file=file, where=where)
    w = str(wanted).strip()
    for i, (_, cid, _name) in enumerate(categories):
        if str(cid) == w:
            return i
    for i, (_, _cid, name) in enumerate(categories):
        if normalize_name(str(name)) == normalize_name(w):
            return i
    listing = ", ".join(f"{c[1]} ({c[2]!r})" for c in categories) or "none"
    raise InputError(f"no keypoint category {wanted!r}; keypoint categories: {listing}", file=file, where=where)
