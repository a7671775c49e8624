"""COCO keypoint data -> the trainer's label file (`posedata.labels.Labels`).

Semantics follow the reference's label step (prepare_train_labels) plus the clean-up and derived
keypoints its training transform applies (ConvertKeypoints), so the trainer reads labels that
need no further per-sample conversion:

- a person is an annotation of the keypoint category with num_keypoints != 0 (recounted from
  v > 0 when the field is missing) that is not a crowd annotation; crowd annotations of the
  category give their segmentation to their image's crowd regions; images without a person are
  dropped; persons are grouped per image, images in the order their first person appears (the
  reference groups into a dict in file order);
- keypoints: COCO visibility -> internal (2 -> 1 visible, 1 -> 0 occluded, anything else -> 2
  absent); clean-up (a point at exactly (0, 0) or outside [0, w) x [0, h) becomes absent) on the
  file's own keypoints; then the mapping into skeleton order by name and the derived keypoints
  from the cleaned sources (mean; absent if any source is absent, visible if all are visible,
  else occluded; absent if the mean falls outside the image). This is the reference's order:
  its clean-up runs before the neck is computed;
- samples ("main persons"): per image in file order, rejected when num_keypoints < min_keypoints
  or area < min_area, or when the Euclidean distance from its bbox centre to the centre of an
  already accepted person of the image is < dedup_ratio * that accepted person's bbox width.

Raw COCO JSON is converted straight from its dicts (no per-annotation objects); a `Dataset`
from an importer goes through the same array core. All per-keypoint work is done on one stacked
(M, K, 3) array. This module reads the input and maps the keypoints; the annotation columns are
posedata/convert_columns.py's, the sample rules posedata/convert_samples.py's.
"""
from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .coco import CategorySpec, Dataset, category_label, from_coco, parse_category, select_categories
from .convert_columns import _columns_from_coco, _columns_from_dataset, _int_or_none
from .convert_samples import REJECT_MIN_AREA, REJECT_MIN_KEYPOINTS, RULE_OPTIONS, select_samples
from .errors import InputError
from .findings import Finding
from .formats.base import ImportOptions, ImportReport
from .io import parse_json, paused_gc, read_bytes
from .labels import ABSENT, OCCLUDED, VISIBLE, Labels
from .skeleton import Skeleton
from .validate import Validated
from .validate_rules import blocks, default_min_keypoints  # the rule is stated beside the checks that name it (V061)


# --------------------------------------------------------------------- input
@dataclass
class Source:
    """What convert reads: the raw COCO JSON when the input is used as plain COCO (None when an
    importer produced the dataset), the dataset model (built lazily: raw COCO converts without it),
    the input's sha256 (None for a folder), an importer's report and format if one ran (`detected`:
    chosen by content rather than named), and the keypoint category to convert (None: the only one)."""

    path: str
    raw: dict[str, Any] | None
    sha256: str | None
    report: ImportReport | None = None
    _dataset: Dataset | None = field(default=None, repr=False)
    import_format: str | None = None
    detected: bool = False
    category_id: int | tuple[int, ...] | None = None
    import_options: dict[str, Any] | None = None
    # the file's bytes when raw was parsed with polygons=False: raw's non-crowd segmentations are
    # views of them, and they are the label file's copy of the source (no second read and hash)
    source_bytes: bytes | None = field(default=None, repr=False)

    def provenance(self) -> dict[str, Any]:
        """How the input was read, for a label file's settings: the import format (None: COCO JSON
        used as it is), whether it was recognised by content, and the import's options."""
        return {"import_format": self.import_format, "import_detected": self.detected if self.import_format else None,
                "import_options": self.import_options}

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = from_coco(self.raw, file=self.path)
        return self._dataset

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as (raw, dataset, report)."""
        return iter((self.raw, self.dataset, self.report))

    @property
    def data(self) -> dict[str, Any] | Dataset:
        """The cheapest input `to_labels` accepts."""
        return self.raw if self.raw is not None else self.dataset


PLAIN_COCO = "coco"  # load_source's fmt for "COCO keypoint JSON as it is, never an import"


def load_source(path: str | Path, skeleton: Skeleton | None = None, category: int | str | None = None,
                fmt: str = "auto", options: ImportOptions | None = None, polygons: bool = True) -> Source:
    """Read convert's input: COCO keypoint JSON as it is, or any labelling tool's export through its
    importer, run in memory (the result carries `_dataset`, `report` and `import_format`, raw None).

    fmt "auto" imports a folder, a file that is not JSON, JSON that is not a COCO object, and COCO
    JSON that carries a tool's fingerprints (importer.detect_format, the same detection as
    `posedata import auto`: coco-annotator's dataset_id/isbbox/keypoint_colors, CVAT's
    attributes); any other COCO JSON is used as it is. fmt "coco" never imports; any format name
    always imports with that reader. A file is read once: hashed and parsed from the same bytes,
    and detection and the import reuse that parse.

    skeleton is needed by an import; options are its options (images, bbox margin, ...; its
    category defaults to `category`). category picks the keypoint category: an id, or for COCO
    JSON also a name. polygons=False (for validate + to_labels + the label file only, which read
    crowd regions alone): plain COCO JSON is parsed by cocojson.parse_coco, the segmentations of
    non-crowd annotations left as raw JSON text and the bytes kept in `source_bytes`."""
    p = Path(path)
    key = (fmt or "auto").strip().lower().replace("_", "-")
    if not p.exists():
        raise InputError("file not found", file=str(p))
    if key not in ("auto", PLAIN_COCO):
        from .importer import format_module

        format_module(key)  # an unknown name fails here, listing the known ones
    if p.is_dir():
        if key == PLAIN_COCO:
            raise InputError("a folder; COCO keypoint JSON is one file", file=str(p))
        return _imported(p, None, None, _detect(p, None) if key == "auto" else key, key == "auto", skeleton,
                         category, options)
    data = read_bytes(p)
    digest = hashlib.sha256(data).hexdigest()
    first = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if key not in ("auto", PLAIN_COCO):
        del data  # the reader reads the file itself; do not hold a second copy meanwhile
        return _imported(p, digest, None, key, False, skeleton, category, options)
    if first not in (b"{", b"["):
        if key == "auto" and first:
            del data
            return _imported(p, digest, None, _detect(p, None), True, skeleton, category, options)
        raise InputError("empty file, expected COCO JSON" if not first else "not JSON, expected COCO keypoint JSON",
                         file=str(p))
    raw = None
    if not polygons:
        from .cocojson import parse_coco

        with paused_gc():
            raw = parse_coco(data[3:] if data[:3] == b"\xef\xbb\xbf" else data)
    kept = data if raw is not None else None
    if raw is None:
        raw = _parse(data, p)
    del data
    if key == "auto":
        found = _detect(p, raw)
        if found is not None or not isinstance(raw, dict):
            if kept is not None:  # an importer reads every field: the plain parse
                raw = _parse(kept, p)
                kept = None
            return _imported(p, digest, raw, found, True, skeleton, category, options)
    if not isinstance(raw, dict):
        raise InputError(f"expected a COCO object at the top level, got {type(raw).__name__}", file=str(p))
    for k in ("images", "annotations", "categories"):
        if not isinstance(raw.get(k), list):
            raise InputError(f"expected a list under {k!r}", file=str(p), where=k)
    return Source(path=str(p), raw=raw, sha256=digest, category_id=_coco_category_id(raw, category, str(p), skeleton),
                  source_bytes=kept)


def source_copy(path: str | Path, src: Source, raw: dict[str, Any]) -> bytes:
    """The bytes a label file keeps of its source, for the gate when the source is gone: the file
    itself when it was used as it is (the exact bytes whose sha256 convert recorded, read again
    from the page cache; re-serialising a COCO-train-sized parse cost 6 s of CPU), else the
    imported COCO JSON."""
    if src.source_bytes is not None:
        return src.source_bytes
    if src.raw is not None and Path(path).is_file():
        data = read_bytes(path)
        if hashlib.sha256(data).hexdigest() == src.sha256:
            return data
    return json.dumps(raw, separators=(",", ":")).encode("utf-8")


def _parse(data: bytes, p: Path) -> Any:
    # The parse allocates millions of containers; with the cyclic GC running, every collection
    # triggered while the heap grows rescans the whole growing parse (parsed JSON cannot hold a
    # cycle, so that finds nothing). So the collector is paused for the parse, and only for it:
    # a library call must not change the process's GC for good, as the gc.freeze() used here
    # before did (it moved every object of the process into a permanent generation). Callers that
    # convert and drop the parse run the whole job under paused_gc(), as `posedata convert` does
    # (figures in bench/README.md, "convert").
    with paused_gc():
        return parse_json(data, p)


def _detect(p: Path, raw: Any) -> str | None:
    """The import format whose content detection accepts the file or folder (a labelling tool's
    fingerprints), or None; raw is the file's parse when there is one, reused by the detectors."""
    from contextlib import nullcontext

    from .importer import detect_format, known_json

    with known_json(p, raw) if raw is not None else nullcontext():
        return detect_format(p)


def _imported(p: Path, digest: str | None, raw: Any, fmt: str | None, detected: bool, skeleton: Skeleton | None,
              category: int | str | None, options: ImportOptions | None) -> Source:
    """Run the import `fmt` in memory (raw: the file's parse, when there is one, reused)."""
    from contextlib import nullcontext

    from .importer import import_file, known_json

    if fmt is None:
        from .formats import FORMATS

        top = "" if raw is None else f"expected a COCO object at the top level, got {type(raw).__name__}; "
        raise InputError(f"{top}not COCO keypoint JSON, and no import format recognises this "
                         f"{'folder' if p.is_dir() else 'file'}; name one with --from: {', '.join(FORMATS)}",
                         file=str(p))
    if skeleton is None:
        raise ValueError(f"importing a {fmt} export needs the skeleton")
    opts = replace(options) if options is not None else ImportOptions()
    if opts.category is None and category is not None:
        opts.category = category_label(category)
    with known_json(p, raw) if raw is not None else nullcontext():
        result = import_file(fmt, p, skeleton, opts)
    if result.frames:  # frames inside a package or in videos: only `import` writes them out
        raise InputError(f"the {fmt} file's frames are in its videos or embedded in it, not image files: run "
                         f"`posedata import {fmt} {p} -o OUT.json` first (it writes the frames beside OUT.json), or "
                         "pass --images with a folder that holds them as images", file=str(p))
    cats = result.dataset.categories
    used = {"category": opts.category, "bbox_margin": opts.bbox_margin, "drop_unlabelled": opts.drop_unlabelled,
            "keep_empty": opts.keep_empty, "images": None if opts.images is None else str(opts.images)}
    return Source(path=str(p), raw=None, sha256=digest, report=result.report, _dataset=result.dataset,
                  import_format=fmt, detected=detected, category_id=cats[0].id if len(cats) == 1 else None,
                  import_options=used)


def _coco_category_id(raw: dict[str, Any], category: CategorySpec, file: str,
                      skeleton: Skeleton | None = None) -> int | tuple[int, ...] | None:
    """The keypoint category ids `category` selects (an id, a name, several ids or "all"; see
    coco.select_categories): one id, a tuple of several, or None (None stays None: the only one)."""
    spec = parse_category(category) if isinstance(category, str) else category
    if spec is None or isinstance(spec, int):
        return spec
    cats = raw["categories"]
    ids = []
    for i in select_categories(cats, spec, file, skeleton):
        cid = _int_or_none(cats[i].get("id"))
        if cid is None:
            raise InputError(f"category id must be an integer, got {cats[i].get('id')!r}", file=file,
                             where=f"categories[{i}].id")
        ids.append(cid)
    return ids[0] if len(ids) == 1 else tuple(ids)


# ---------------------------------------------------------------- keypoints
def internal_visibility(v: np.ndarray) -> np.ndarray:
    """COCO v -> internal: 2 -> 1 (visible), 1 -> 0 (occluded), anything else -> 2 (absent)."""
    out = np.full(v.shape, ABSENT, dtype=np.int8)
    out[v == 2] = VISIBLE
    out[v == 1] = OCCLUDED
    return out


def outside(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Points outside [0, w) x [0, h) (arrays broadcast)."""
    return (x < 0) | (x >= w) | (y < 0) | (y >= h)


def map_keypoints(kp: np.ndarray, wh: np.ndarray, skeleton: Skeleton, src_index: np.ndarray,
                  dtype: type = np.float32, rows: np.ndarray | None = None) -> np.ndarray:
    """(M, Kc, 3) file-order keypoints with COCO visibility and (M, 2) image sizes -> (M, K, 3)
    skeleton-order keypoints with internal visibility, clean-up applied, derived keypoints filled.
    Arithmetic is float64 (the reference's Python floats); only the result is cast to dtype.
    rows: the instances' keypoints are kp[rows] (gathered block by block, never as a whole)."""
    m = kp.shape[0] if rows is None else len(rows)
    out = np.empty((m, skeleton.num_keypoints, 3), dtype=dtype)
    # rows are independent: in blocks, so the float64 temporaries are reused from malloc's heap
    # rather than fresh kernel pages for each (validate_rules.BLOCK_ROWS says why)
    for e in blocks(m):
        _map_block(kp[e] if rows is None else kp[rows[e]], wh[e], skeleton, src_index, out[e])
    return out


def _map_block(kp: np.ndarray, wh: np.ndarray, skeleton: Skeleton, src_index: np.ndarray, out: np.ndarray) -> None:
    m = kp.shape[0]
    x = np.ascontiguousarray(kp[:, :, 0])
    y = np.ascontiguousarray(kp[:, :, 1])
    v = internal_visibility(kp[:, :, 2])
    w = wh[:, 0:1].astype(np.float64)
    h = wh[:, 1:2].astype(np.float64)
    v[((x == 0) & (y == 0)) | outside(x, y, w, h)] = ABSENT
    direct = np.flatnonzero(src_index >= 0)
    src = src_index[direct]
    out[:, direct, 0] = x[:, src]
    out[:, direct, 1] = y[:, src]
    out[:, direct, 2] = v[:, src]
    for d in skeleton.derived:
        srcs = src_index[[skeleton.index(s) for s in d.mean_of]]
        # sum then divide: for two sources this is the reference's (a + b) / 2, bit for bit
        mx = x[:, srcs].sum(axis=1) / len(srcs)
        my = y[:, srcs].sum(axis=1) / len(srcs)
        sv = v[:, srcs]
        dv = np.full(m, OCCLUDED, dtype=np.int8)
        dv[(sv == VISIBLE).all(axis=1)] = VISIBLE
        dv[(sv == ABSENT).any(axis=1) | outside(mx, my, w[:, 0], h[:, 0])] = ABSENT
        j = skeleton.index(d.name)
        out[:, j, 0] = mx
        out[:, j, 1] = my
        out[:, j, 2] = dv


# ------------------------------------------------------------------ convert
def to_labels(ds: Dataset | dict[str, Any], skeleton: Skeleton, category_id: CategorySpec = None,
              min_keypoints: int | None = None, min_area: float = 32 * 32, dedup_ratio: float = 0.3,
              source: str | None = None, source_sha256: str | None = None,
              validated: Validated | None = None) -> Labels:
    """Convert a Dataset (or raw COCO JSON that passed validation) into the trainer's labels.

    validated: what validate_coco(keep=...) read of the same raw COCO JSON; its columns and stacked
    keypoints are used instead of reading the annotation dicts again (the labels are the same).

    Annotations that cannot be represented (unknown image, keypoints that are not 3*K finite
    numbers, no usable bbox) are dropped and counted in `labels.extra["stats"]`; a missing area
    is taken from the bbox and a missing num_keypoints recounted, both counted too.
    min_keypoints None: default_min_keypoints(skeleton)."""
    if min_keypoints is None:
        min_keypoints = default_min_keypoints(skeleton)
    # column lists and arrays only, no cycles: a collection here would just rescan the input
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _to_labels(ds, skeleton, category_id, min_keypoints, min_area, dedup_ratio, source, source_sha256,
                          validated)
    finally:
        if was_enabled:
            gc.enable()


def _to_labels(ds: Dataset | dict[str, Any], skeleton: Skeleton, category_id: CategorySpec, min_keypoints: int,
               min_area: float, dedup_ratio: float, source: str | None, source_sha256: str | None,
               validated: Validated | None = None) -> Labels:
    cat_ids, cat_names, names, cols = _category_columns(ds, skeleton, category_id, source, validated)
    src_index = skeleton.source_index(names)

    # images in the order their first person appears; instances grouped by image, file order within
    m = len(cols.ids)
    uniq, first = np.unique(cols.image_ids, return_index=True)
    order = np.argsort(first, kind="stable")
    image_ids = uniq[order]
    rank_of = np.empty(len(uniq), dtype=np.int64)
    rank_of[order] = np.arange(len(uniq))
    rank = rank_of[np.searchsorted(uniq, cols.image_ids)] if m else np.zeros(0, dtype=np.int64)
    # instances already grouped by image (as a file written image by image has them): no copies
    perm = slice(None) if m < 2 or bool((rank[1:] >= rank[:-1]).all()) else np.argsort(rank, kind="stable")
    rank = rank[perm]
    info = [cols.images[int(i)] for i in image_ids]
    widths = np.array([t[1] for t in info], dtype=np.int64).reshape(-1)
    heights = np.array([t[2] for t in info], dtype=np.int64).reshape(-1)

    kp_src, kp_rows = cols.instance_keypoints(perm)
    wh = np.stack([widths[rank], heights[rank]], axis=1) if m else np.zeros((0, 2), dtype=np.int64)
    kps = map_keypoints(kp_src, wh, skeleton, src_index, rows=kp_rows)
    bbox = cols.bbox[perm]
    area = cols.area[perm]
    nk = cols.num_keypoints[perm]
    samples, rejected = select_samples(rank, nk, area, bbox, min_keypoints, min_area, dedup_ratio)

    pos = {int(i): r for r, i in enumerate(image_ids.tolist())}
    crowd: list[list[Any]] = [[] for _ in range(len(image_ids))]
    n_crowd = 0
    for iid, seg in cols.crowd:
        r = pos.get(iid)
        if r is not None:
            crowd[r].append(seg)
            n_crowd += 1
    stats = {
        "images_in_file": cols.n_images,
        "images": int(len(image_ids)),
        "images_without_person": int(cols.n_images - len(image_ids)),
        "annotations": cols.n_annotations,
        "other_category": cols.n_other_category,
        "instances": int(m),
        "samples": int(len(samples)),
        "dropped": dict(cols.dropped),
        "rejected": dict(rejected),
        "crowd_regions": n_crowd,
        "crowd_regions_unused": len(cols.crowd) - n_crowd,
        "area_from_bbox": cols.area_from_bbox,
        "num_keypoints_recounted": cols.recounted,
    }
    settings = {
        "min_keypoints": int(min_keypoints), "min_area": float(min_area), "dedup_ratio": float(dedup_ratio),
        "category_id": int(cat_ids[0]), "category_name": cat_names[0], "source_keypoints": names,
        # every category merged into these labels (one keypoint list): what the gate re-checks
        "categories": [{"id": int(i), "name": n} for i, n in zip(cat_ids, cat_names)],
        "source": source, "source_sha256": source_sha256,
    }
    return Labels(
        fingerprint=skeleton.fingerprint, skeleton_name=skeleton.name, keypoint_names=list(skeleton.keypoints),
        settings=settings, image_ids=image_ids.astype(np.int64), file_names=[t[0] for t in info],
        widths=widths.astype(np.int32), heights=heights.astype(np.int32), crowd=crowd,
        inst_image=rank.astype(np.int32), inst_ids=cols.ids[perm], keypoints=kps.astype(np.float32, copy=False),
        bbox=bbox.astype(np.float32), area=area.astype(np.float32), num_keypoints=nk.astype(np.int32),
        samples=samples.astype(np.int32), extra={"stats": stats},
    )


def _category_columns(ds: Dataset | dict[str, Any], skeleton: Skeleton, category_id: CategorySpec,
                      source: str | None, validated: Validated | None) -> tuple[list[int], list[str], list[str], Any]:
    """(category ids, their names, the dataset's keypoint names, the annotation columns) of the
    categories converted, from a Dataset or raw COCO JSON."""
    if isinstance(ds, Dataset):
        cats = ds.categories_for(category_id, skeleton)
        cat_ids, cat_names, names = [c.id for c in cats], [c.name for c in cats], list(cats[0].keypoints)
        skeleton.source_index(names)  # the keypoint names are checked before the columns are read
        return cat_ids, cat_names, names, _columns_from_dataset(ds, cat_ids, len(names))
    if isinstance(ds, dict):
        if not isinstance(ds.get("categories"), list):
            raise InputError("expected a COCO object with a 'categories' list", file=source, where="categories")
        chosen = [ds["categories"][i] for i in select_categories(ds["categories"], category_id, source, skeleton)]
        cat_ids, cat_names = [], []
        for c in chosen:
            cid = _int_or_none(c.get("id"))
            if cid is None:
                raise InputError(f"category id must be an integer, got {c.get('id')!r}", file=source, where="categories")
            cat_ids.append(cid)
            cat_names.append(str(c.get("name", "")))
        names = [str(k) for k in chosen[0]["keypoints"]]
        skeleton.source_index(names)
        for key in ("images", "annotations"):
            if not isinstance(ds.get(key), list):
                raise InputError(f"expected a list under {key!r}", file=source, where=key)
        return cat_ids, cat_names, names, _columns_from_coco(ds, cat_ids, len(names), source, validated)
    raise TypeError(f"to_labels takes a Dataset or a COCO dict, not {type(ds).__name__}")


# ------------------------------------------------------------------ verdict
NO_SAMPLES = "C002"
MOST_REJECTED = "C003"
_RULE_TEXT = {REJECT_MIN_KEYPOINTS: "fewer than {min_keypoints} labelled keypoints (num_keypoints)",
              REJECT_MIN_AREA: "area under {min_area:g}"}


def sample_findings(labels: Labels, file: str | None = None) -> list[Finding]:
    """What the sample rules did, as findings: no training sample at all is an error (C002) naming
    the rules that rejected the instances and the convert option that changes each; a threshold
    rule rejecting more than half the instances is a warning (C003). De-duplication is the
    reference's crowd rule, not a threshold that may not fit the data, so it is only named."""
    st, se = labels.extra.get("stats", {}), labels.settings
    rejected = {k: int(v) for k, v in st.get("rejected", {}).items() if v}
    n, samples = int(st.get("instances", len(labels.inst_ids))), labels.num_samples

    def rule(r: str) -> str:
        text = _RULE_TEXT.get(r, "centre within {dedup_ratio:g} x the width of an accepted sample").format(**se)
        return f"{rejected[r]} of {n} instance(s) rejected by {r} ({text}; {RULE_OPTIONS[r]} changes it)"

    if samples == 0:
        if n == 0:
            dropped = ", ".join(f"{v} {k}" for k, v in st.get("dropped", {}).items() if v) or "no annotations"
            why = (f"no instance of the keypoint category has labelled keypoints on a known image ({dropped}); "
                   "check --category and the keypoints' visibility")
        else:
            why = "; ".join(rule(r) for r in rejected)
        return [Finding(NO_SAMPLES, "error", f"0 training samples: {why}", where="samples", file=file)]
    out = []
    for r in (REJECT_MIN_KEYPOINTS, REJECT_MIN_AREA):
        if rejected.get(r, 0) * 2 > n:
            out.append(Finding(MOST_REJECTED, "warning", f"{rule(r)}; {samples} training sample(s) left",
                               where="samples", file=file))
    return out


