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
(M, K, 3) array.
"""
from __future__ import annotations

import gc
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np

from .coco import CategorySpec, Dataset, category_label, from_coco, parse_category, select_categories
from .errors import InputError
from .findings import Finding
from .formats.base import ImportOptions, ImportReport
from .io import parse_json, paused_gc, read_bytes
from .labels import ABSENT, OCCLUDED, VISIBLE, Labels
from .skeleton import Skeleton
from .validate import Validated
from .validate_rules import default_min_keypoints  # the rule is stated beside the checks that name it (V061)

# reasons an annotation of the keypoint category is not a person instance
DROP_CROWD = "crowd (iscrowd): kept as a crowd region"
DROP_NO_KEYPOINTS = "num_keypoints == 0"
DROP_UNKNOWN_IMAGE = "image_id not among the images (or the image has no usable size)"
DROP_BAD_KEYPOINTS = "keypoints not 3*K finite numbers"
DROP_BAD_BBOX = "bbox not 4 finite numbers"
# rules that keep a person from being a training sample (it stays an instance)
REJECT_MIN_KEYPOINTS = "min_keypoints"
REJECT_MIN_AREA = "min_area"
REJECT_DEDUP = "dedup"
# the option of `posedata convert` that changes each rule
RULE_OPTIONS = {REJECT_MIN_KEYPOINTS: "--min-keypoints", REJECT_MIN_AREA: "--min-area", REJECT_DEDUP: "--dedup"}

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


# ------------------------------------------------------------------ columns
@dataclass
class _Columns:
    """Person instances of one category as arrays, in file order, plus crowd regions."""

    ids: np.ndarray  # (M,) int64
    image_ids: np.ndarray  # (M,) int64
    keypoints: np.ndarray  # (M, Kc, 3) float64, file order, COCO visibility
    bbox: np.ndarray  # (M, 4) float64
    area: np.ndarray  # (M,) float64
    num_keypoints: np.ndarray  # (M,) int64
    crowd: list[tuple[int, Any]]  # (image_id, segmentation) in file order
    images: dict[int, tuple[str, int, int]]  # id -> (file_name, width, height)
    n_images: int
    n_annotations: int
    n_other_category: int
    dropped: Counter
    area_from_bbox: int = 0
    recounted: int = 0


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
        return None
    return int(v)


def _ints(values: list[Any]) -> list[int | None]:
    """_int_or_none over a column, with a fast pass when every value is already an int."""
    if set(map(type, values)) <= {int}:
        return values
    return [_int_or_none(v) for v in values]


def _column(records: list[dict[str, Any]], key: str, default: Any = None) -> list[Any]:
    """record.get(key, default) for every record, looped in C (map over dict.get)."""
    return list(map(dict.get, records, repeat(key), repeat(default)))


def _image_table(images: list[Any]) -> dict[int, tuple[str, int, int]]:
    """id -> (file_name, width, height); entries without an integer id or a positive size are
    left out (their persons are dropped). A repeated id keeps the last entry, as the reference."""
    table: dict[int, tuple[str, int, int]] = {}
    ims = [im for im in images if type(im) is dict]
    ids, ws, hs = _ints(_column(ims, "id")), _ints(_column(ims, "width")), _ints(_column(ims, "height"))
    for iid, name, w, h in zip(ids, _column(ims, "file_name", ""), ws, hs):
        if iid is None or w is None or h is None or w <= 0 or h <= 0:
            continue
        table[iid] = (name if type(name) is str else str(name), w, h)
    return table


def _stack_numbers(rows: list[Any], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, width) float64 from lists of numbers, and a mask of the rows that were usable
    (a list of exactly `width` finite numbers). Fast path: one np.fromiter over all rows."""
    n = len(rows)
    if set(map(type, rows)) <= {list}:
        ok = np.fromiter(map(len, rows), dtype=np.int64, count=n) == width
    else:
        ok = np.fromiter((type(r) is list and len(r) == width for r in rows), dtype=bool, count=n)
    everything = bool(ok.all())
    out = None if everything else np.zeros((n, width), dtype=np.float64)
    good = rows if everything else [r for r, k in zip(rows, ok) if k]
    try:
        vals = np.fromiter(chain.from_iterable(good), dtype=np.float64, count=len(good) * width).reshape(-1, width)
        if out is None:
            out = vals
        else:
            out[ok] = vals
    except (TypeError, ValueError):
        out = np.zeros((n, width), dtype=np.float64)
        # some row holds a non-number: find which, row by row (slow path, bad data only)
        for i in np.flatnonzero(ok):
            try:
                out[i] = np.asarray(rows[i], dtype=np.float64)
            except (TypeError, ValueError):
                ok[i] = False
    ok &= np.isfinite(out).all(axis=1)
    return out, ok


def _int_array(values: list[int | None], fill: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 array with None replaced by fill, and the mask of the Nones."""
    n = len(values)
    if None in values:
        missing = np.array([v is None for v in values], dtype=bool).reshape(n)
        values = [fill if v is None else v for v in values]
    else:
        missing = np.zeros(n, dtype=bool)
    try:
        return np.array(values, dtype=np.int64).reshape(n), missing
    except OverflowError:
        raise InputError("an id or num_keypoints does not fit in 64 bits") from None


def _objects(values: list[Any]) -> np.ndarray:
    """1-D object array (np.array would nest lists of equal length into more dimensions)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _finish_columns(ids: list[int | None], image_ids: list[int | None], kp_rows: list[Any], bbox_rows: list[Any],
                    areas: list[Any], nks: list[Any], kc: int, images: dict[int, tuple[str, int, int]],
                    dropped: Counter, crowd: list[tuple[int, Any]], n_images: int, n_ann: int,
                    n_other: int, flat_keypoints: bool) -> _Columns:
    """Shared tail of both extractors: stack, recount, drop what cannot be represented."""
    m = len(ids)
    if flat_keypoints:
        kp, kp_ok = _stack_numbers(kp_rows, 3 * kc)
    else:  # Dataset path: (n, 3) arrays
        kp = np.zeros((m, 3 * kc), dtype=np.float64)
        kp_ok = np.zeros(m, dtype=bool)
        for i, a in enumerate(kp_rows):
            if a is not None and a.shape == (kc, 3):
                kp[i] = a.reshape(-1)
                kp_ok[i] = True
        kp_ok &= np.isfinite(kp).all(axis=1)
    kp = kp.reshape(m, kc, 3)
    bbox, bb_ok = _stack_numbers(bbox_rows, 4)
    if set(map(type, areas)) <= {float, int}:
        area = np.array(areas, dtype=np.float64).reshape(m)
    else:
        area = np.array([float(a) if isinstance(a, (int, float)) and not isinstance(a, bool) else np.nan for a in areas],
                        dtype=np.float64).reshape(m)
    nk, missing = _int_array(_ints(nks), 0)
    # an unusable id stays -1 (nothing needs it); an unusable image_id is an unknown image
    ids_a = _int_array(ids, -1)[0]
    img_a = _int_array(image_ids, -1)[0]
    known = np.fromiter(map(images.__contains__, image_ids), dtype=bool, count=m)
    return _pack(ids_a, img_a, known, kp, kp_ok, bbox, bb_ok, area, nk, missing, dropped, crowd, images, n_images,
                 n_ann, n_other)


def _pack(ids_a: np.ndarray, img_a: np.ndarray, known: np.ndarray, kp: np.ndarray, kp_ok: np.ndarray,
          bbox: np.ndarray, bb_ok: np.ndarray, area: np.ndarray, nk: np.ndarray, missing: np.ndarray, dropped: Counter,
          crowd: list[tuple[int, Any]], images: dict[int, tuple[str, int, int]], n_images: int, n_ann: int,
          n_other: int) -> _Columns:
    """Shared tail of every extraction: area and num_keypoints filled in, then what cannot be
    represented dropped and counted."""
    m = len(ids_a)
    no_area = ~np.isfinite(area)
    area[no_area] = bbox[no_area, 2] * bbox[no_area, 3]
    nk[missing] = (kp[missing, :, 2] > 0).sum(axis=1)

    keep = np.ones(m, dtype=bool)
    for mask, reason in ((~known, DROP_UNKNOWN_IMAGE), (~kp_ok, DROP_BAD_KEYPOINTS), (~bb_ok, DROP_BAD_BBOX),
                         (nk == 0, DROP_NO_KEYPOINTS)):
        hit = keep & mask
        if hit.any():
            dropped[reason] += int(hit.sum())
        keep &= ~mask
    return _Columns(
        ids=ids_a[keep], image_ids=img_a[keep], keypoints=kp[keep], bbox=bbox[keep], area=area[keep],
        num_keypoints=nk[keep], crowd=crowd, images=images, n_images=n_images, n_annotations=n_ann,
        n_other_category=n_other, dropped=dropped, area_from_bbox=int((no_area & keep).sum()),
        recounted=int((missing & keep).sum()))


def _columns_from_coco(data: dict[str, Any], cat_ids: list[int], kc: int, file: str | None,
                       validated: Validated | None = None) -> _Columns:
    anns = data["annotations"]
    images = _image_table(data["images"])
    if not set(map(type, anns)) <= {dict}:
        i = next(i for i, a in enumerate(anns) if type(a) is not dict)
        raise InputError(f"expected an annotation object, got {type(anns[i]).__name__}", file=file,
                         where=f"annotations[{i}]")
    if validated is not None and validated.anns is anns:
        cols = _columns_from_validated(anns, validated, cat_ids, kc, images, len(data["images"]))
        if cols is not None:
            return cols
    dropped: Counter = Counter()
    # classify every annotation with object-array comparisons (C loops, Python == semantics)
    n = len(anns)
    cats_col = _objects(_column(anns, "category_id"))
    in_cat = np.zeros(n, dtype=bool)
    for cat_id in cat_ids:
        in_cat |= (cats_col == cat_id).astype(bool)
    is_crowd = _objects(_column(anns, "iscrowd")).astype(bool)
    # a missing num_keypoints (read as 1 here) is recounted later
    no_kp = (_objects(_column(anns, "num_keypoints", 1)) == 0).astype(bool)
    n_other = int(n - in_cat.sum())
    crowd: list[tuple[int, Any]] = []
    for i in np.flatnonzero(in_cat & is_crowd).tolist():
        a = anns[i]
        dropped[DROP_CROWD] += 1
        if _int_or_none(a.get("image_id")) is not None:
            crowd.append((int(a["image_id"]), a.get("segmentation")))
    if (hit := int((in_cat & ~is_crowd & no_kp).sum())):
        dropped[DROP_NO_KEYPOINTS] += hit
    persons = [anns[i] for i in np.flatnonzero(in_cat & ~is_crowd & ~no_kp).tolist()]
    return _finish_columns(
        _ints(_column(persons, "id")), _ints(_column(persons, "image_id")), _column(persons, "keypoints"),
        _column(persons, "bbox"), _column(persons, "area"), _column(persons, "num_keypoints"), kc, images, dropped,
        crowd, len(data["images"]), len(anns), n_other, flat_keypoints=True)


def _columns_from_validated(anns: list[dict[str, Any]], v: Validated, cat_ids: list[int], kc: int,
                            images: dict[int, tuple[str, int, int]], n_images: int) -> _Columns | None:
    """_columns_from_coco from what validate read (its columns and stacked keypoints), or None when
    that could differ from reading the dicts here: a chosen category validate did not stack, or a
    row of a chosen category the screen did not pass other than a plain crowd region."""
    if any(c not in v.keypoints or v.keypoints[c][1].shape[1:] != (kc, 3) for c in cat_ids):
        return None
    n = len(anns)
    crowd: list[tuple[int, Any]] = []
    n_other = 0
    for i in np.flatnonzero(~v.clean).tolist():  # crowd regions and damaged rows: a few per cent
        a = anns[i]
        cid = a.get("category_id")
        if type(cid) is not int:
            return None
        if cid not in cat_ids:
            n_other += 1
        elif type(a.get("iscrowd")) is int and a["iscrowd"] == 1 and type(a.get("image_id")) is int:
            crowd.append((a["image_id"], a.get("segmentation")))
        else:
            return None
    in_cat = v.clean & np.isin(v.category_ids, cat_ids)
    n_other += int((v.clean & ~in_cat).sum())
    dropped: Counter = Counter()
    if crowd:
        dropped[DROP_CROWD] = len(crowd)
    no_kp = in_cat & (v.num_keypoints == 0)
    if (hit := int(no_kp.sum())):
        dropped[DROP_NO_KEYPOINTS] = hit
    persons = np.flatnonzero(in_cat & ~no_kp)
    m = len(persons)
    kp = np.empty((m, kc, 3), dtype=np.float64)
    cats = v.category_ids[persons]
    for c in cat_ids:
        rows, arr = v.keypoints[c]
        mine = np.flatnonzero(cats == c)
        kp[mine] = arr[np.searchsorted(rows, persons[mine])]
    kp_ok = np.isfinite(kp).all(axis=(1, 2))
    img = v.image_ids[persons]
    known = np.fromiter(map(images.__contains__, img.tolist()), dtype=bool, count=m)
    return _pack(v.ids[persons], img, known, kp, kp_ok, v.bbox[persons], np.ones(m, dtype=bool), v.area[persons],
                 v.num_keypoints[persons].astype(np.int64), np.zeros(m, dtype=bool), dropped, crowd, images,
                 n_images, n, n_other)


def _columns_from_dataset(ds: Dataset, cat_ids: list[int], kc: int) -> _Columns:
    images = {im.id: (im.file_name, im.width, im.height) for im in ds.images if im.width > 0 and im.height > 0}
    dropped: Counter = Counter()
    crowd: list[tuple[int, Any]] = []
    persons = []
    n_other = 0
    for a in ds.annotations:
        if a.category_id not in cat_ids:
            n_other += 1
        elif a.iscrowd:
            dropped[DROP_CROWD] += 1
            crowd.append((a.image_id, a.segmentation))
        elif a.num_keypoints == 0:
            dropped[DROP_NO_KEYPOINTS] += 1
        else:
            persons.append(a)
    return _finish_columns(
        [a.id for a in persons], [a.image_id for a in persons], [a.keypoints for a in persons],
        [list(a.bbox) if a.bbox is not None else None for a in persons], [a.area for a in persons],
        [a.num_keypoints for a in persons], kc, images, dropped, crowd, len(ds.images), len(ds.annotations),
        n_other, flat_keypoints=False)


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
                  dtype: type = np.float32) -> np.ndarray:
    """(M, Kc, 3) file-order keypoints with COCO visibility and (M, 2) image sizes -> (M, K, 3)
    skeleton-order keypoints with internal visibility, clean-up applied, derived keypoints filled.
    Arithmetic is float64 (the reference's Python floats); only the result is cast to dtype."""
    m = kp.shape[0]
    x = np.ascontiguousarray(kp[:, :, 0])
    y = np.ascontiguousarray(kp[:, :, 1])
    v = internal_visibility(kp[:, :, 2])
    w = wh[:, 0:1].astype(np.float64)
    h = wh[:, 1:2].astype(np.float64)
    v[((x == 0) & (y == 0)) | outside(x, y, w, h)] = ABSENT
    out = np.empty((m, skeleton.num_keypoints, 3), dtype=dtype)
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
    return out


# ------------------------------------------------------------------ samples
def select_samples(image_rank: np.ndarray, num_keypoints: np.ndarray, area: np.ndarray, bbox: np.ndarray,
                   min_keypoints: int = 5, min_area: float = 32 * 32, dedup_ratio: float = 0.3
                   ) -> tuple[np.ndarray, Counter]:
    """Indices of the main persons, in instance order, and counts of rejections by rule.

    Instances must be grouped by image (image_rank non-decreasing) and in file order within an
    image. The threshold rules are vectorised. De-duplication depends on what was accepted
    before, so it is sequential by nature; but a candidate with no earlier candidate of its image
    anywhere near is accepted whatever happened before, so all pairs of candidates within an
    image are screened at once and only candidates near an earlier one are decided one by one,
    in Python floats with the reference's own arithmetic, so ties break identically."""
    rejected: Counter = Counter()
    few = num_keypoints < min_keypoints
    small = ~few & (area < min_area)
    rejected[REJECT_MIN_KEYPOINTS] = int(few.sum())
    rejected[REJECT_MIN_AREA] = int(small.sum())
    cand = np.flatnonzero(~few & ~small)
    n = len(cand)
    keep = np.ones(n, dtype=bool)
    if n:
        ranks = image_rank[cand]
        starts = np.flatnonzero(np.r_[True, ranks[1:] != ranks[:-1]])
        sizes = np.diff(np.r_[starts, n])
        b = bbox[cand].astype(np.float64)
        if int((sizes * (sizes - 1) // 2).sum()) <= _MAX_PAIRS:
            _dedup_screened(b, starts, sizes, dedup_ratio, keep)
        else:  # an image with thousands of candidates: pairs would not fit, walk every image
            _dedup_loop(b.tolist(), starts, sizes, dedup_ratio, keep)
    rejected[REJECT_DEDUP] = int((~keep).sum())
    return cand[keep].astype(np.int64), rejected


_MAX_PAIRS = 20_000_000


def _close(bi: list[float], bj: list[float], ratio: float) -> bool:
    """The reference's test, in its arithmetic: is j's centre within ratio * i's width of i's?"""
    pix, piy = bi[0] + bi[2] / 2, bi[1] + bi[3] / 2
    cx, cy = bj[0] + bj[2] / 2, bj[1] + bj[3] / 2
    return ((cx - pix) ** 2 + (cy - piy) ** 2) ** 0.5 < bi[2] * ratio


def _dedup_loop(b: list[list[float]], starts: np.ndarray, sizes: np.ndarray, ratio: float, keep: np.ndarray) -> None:
    for s, size in zip(starts.tolist(), sizes.tolist()):
        accepted: list[int] = []
        for j in range(s, s + size):
            if any(_close(b[i], b[j], ratio) for i in accepted):
                keep[j] = False
            else:
                accepted.append(j)


def _dedup_screened(b: np.ndarray, starts: np.ndarray, sizes: np.ndarray, ratio: float, keep: np.ndarray) -> None:
    n = len(b)
    group = np.repeat(np.arange(len(starts)), sizes)
    earlier = np.arange(n) - starts[group]  # candidates before j in its image
    j = np.repeat(np.arange(n), earlier)
    if len(j) == 0:
        return
    first_pair = np.cumsum(earlier) - earlier
    i = starts[group[j]] + np.arange(len(j)) - first_pair[j]
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    d = np.hypot(cx[j] - cx[i], cy[j] - cy[i])
    # a superset of the close pairs: rounding differences from the reference's arithmetic are
    # far below this margin, and every pair kept is decided by the exact test below
    maybe = d < np.abs(b[i, 2] * ratio) * (1 + 1e-9) + 1e-9
    pi, pj = i[maybe].tolist(), j[maybe].tolist()
    if not pj:
        return
    rows = b.tolist()
    # pairs come ordered by j, so every earlier candidate's fate is settled when j is decided
    for ii, jj in zip(pi, pj):
        if keep[jj] and keep[ii] and _close(rows[ii], rows[jj], ratio):
            keep[jj] = False


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
    if isinstance(ds, Dataset):
        cats = ds.categories_for(category_id, skeleton)
        cat_ids, cat_names, names = [c.id for c in cats], [c.name for c in cats], list(cats[0].keypoints)
        src_index = skeleton.source_index(names)
        cols = _columns_from_dataset(ds, cat_ids, len(names))
    elif isinstance(ds, dict):
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
        src_index = skeleton.source_index(names)
        for key in ("images", "annotations"):
            if not isinstance(ds.get(key), list):
                raise InputError(f"expected a list under {key!r}", file=source, where=key)
        cols = _columns_from_coco(ds, cat_ids, len(names), source, validated)
    else:
        raise TypeError(f"to_labels takes a Dataset or a COCO dict, not {type(ds).__name__}")

    # images in the order their first person appears; instances grouped by image, file order within
    m = len(cols.ids)
    uniq, first = np.unique(cols.image_ids, return_index=True)
    order = np.argsort(first, kind="stable")
    image_ids = uniq[order]
    rank_of = np.empty(len(uniq), dtype=np.int64)
    rank_of[order] = np.arange(len(uniq))
    rank = rank_of[np.searchsorted(uniq, cols.image_ids)] if m else np.zeros(0, dtype=np.int64)
    perm = np.argsort(rank, kind="stable")
    rank = rank[perm]
    info = [cols.images[int(i)] for i in image_ids]
    widths = np.array([t[1] for t in info], dtype=np.int64).reshape(-1)
    heights = np.array([t[2] for t in info], dtype=np.int64).reshape(-1)

    kp_src = cols.keypoints[perm]
    wh = np.stack([widths[rank], heights[rank]], axis=1) if m else np.zeros((0, 2), dtype=np.int64)
    kps = map_keypoints(kp_src, wh, skeleton, src_index)
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
        inst_image=rank.astype(np.int32), inst_ids=cols.ids[perm], keypoints=kps.astype(np.float32),
        bbox=bbox.astype(np.float32), area=area.astype(np.float32), num_keypoints=nk.astype(np.int32),
        samples=samples.astype(np.int32), extra={"stats": stats},
    )
