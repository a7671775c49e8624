"""convert's annotation columns: the person instances of the keypoint category as arrays (ids,
image ids, stacked keypoints, boxes, areas), read from raw COCO dicts, from what validate already
read (Validated), or from an importer's Dataset; what cannot be represented is dropped and counted."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np

from .coco import Dataset
from .cocojson import keypoint_lists
from .columns import TypedRecords
from .errors import InputError
from .validate import Validated
from .validate_rules import blocks

# reasons an annotation of the keypoint category is not a person instance
DROP_CROWD = "crowd (iscrowd): kept as a crowd region"
DROP_NO_KEYPOINTS = "num_keypoints == 0"
DROP_UNKNOWN_IMAGE = "image_id not among the images (or the image has no usable size)"
DROP_BAD_KEYPOINTS = "keypoints not 3*K finite numbers"
DROP_BAD_BBOX = "bbox not 4 finite numbers"


@dataclass
class _Columns:
    """Person instances of one category as arrays, in file order, plus crowd regions."""

    ids: np.ndarray  # (M,) int64
    image_ids: np.ndarray  # (M,) int64
    keypoints: np.ndarray  # (M, Kc, 3) float64, file order, COCO visibility; rows kp_rows when given
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
    # instance i's keypoints are keypoints[kp_rows[i]] (validate's stack, not gathered again: at
    # COCO-train size a gather is 61 MB of fresh pages); None: keypoints[i]
    kp_rows: np.ndarray | None = None

    def instance_keypoints(self, order: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray | None]:
        """(array, rows) of the instances in `order`: their keypoints are array[rows] (rows None: array)."""
        if self.kp_rows is None:
            return self.keypoints[order], None
        return self.keypoints, self.kp_rows[order]


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
    except (TypeError, ValueError, OverflowError):
        out = np.zeros((n, width), dtype=np.float64)
        # some row holds a non-number or an int beyond float range: find which, row by row (slow
        # path, bad data only); such a row is unusable, as validate's stacked copy has it (inf)
        for i in np.flatnonzero(ok):
            try:
                out[i] = np.asarray(rows[i], dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
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
    if type(kp_rows) is tuple:  # stacked already, from cocojson's parsed column
        kp, kp_ok = kp_rows
    elif flat_keypoints:
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
          n_other: int, kp_rows: np.ndarray | None = None) -> _Columns:
    """Shared tail of every extraction: area and num_keypoints filled in, then what cannot be
    represented dropped and counted. kp_rows: instance i's keypoints are kp[kp_rows[i]]."""
    m = len(ids_a)
    no_area = ~np.isfinite(area)
    area[no_area] = bbox[no_area, 2] * bbox[no_area, 3]
    if missing.any():
        nk[missing] = (kp[missing if kp_rows is None else kp_rows[missing], :, 2] > 0).sum(axis=1)

    keep = np.ones(m, dtype=bool)
    for mask, reason in ((~known, DROP_UNKNOWN_IMAGE), (~kp_ok, DROP_BAD_KEYPOINTS), (~bb_ok, DROP_BAD_BBOX),
                         (nk == 0, DROP_NO_KEYPOINTS)):
        hit = keep & mask
        if hit.any():
            dropped[reason] += int(hit.sum())
        keep &= ~mask
    sel = slice(None) if keep.all() else keep  # nothing dropped (the rule): no copies
    return _Columns(
        ids=ids_a[sel], image_ids=img_a[sel], keypoints=kp[sel] if kp_rows is None else kp, bbox=bbox[sel],
        area=area[sel], num_keypoints=nk[sel], crowd=crowd, images=images, n_images=n_images, n_annotations=n_ann,
        n_other_category=n_other, dropped=dropped, area_from_bbox=int((no_area & keep).sum()),
        recounted=int((missing & keep).sum()), kp_rows=None if kp_rows is None else kp_rows[sel])


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
    rows = np.flatnonzero(in_cat & ~is_crowd & ~no_kp)
    persons = [anns[i] for i in rows.tolist()]
    kp_rows: Any
    if type(anns) is TypedRecords and anns.keypoints is not None:  # cocojson's parse: its parsed column
        kp_ok = anns.keypoints.length[rows] == 3 * kc
        kp = np.zeros((len(rows), 3 * kc), dtype=np.float64)
        kp[kp_ok] = anns.keypoints.take(rows[kp_ok], 3 * kc)
        kp_ok &= np.isfinite(kp).all(axis=1)
        kp_rows = (kp, kp_ok)
    else:
        if type(anns) is TypedRecords:  # the column released: the records' raw text, as lists
            keypoint_lists(anns, rows.tolist())
        kp_rows = _column(persons, "keypoints")
    return _finish_columns(
        _ints(_column(persons, "id")), _ints(_column(persons, "image_id")), kp_rows,
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
    kp_rows = None
    if len(cat_ids) == 1:  # validate's stack itself, its rows named: no (m, kc, 3) float64 copy
        rows, kp = v.keypoints[cat_ids[0]]
        kp_rows = np.searchsorted(rows, persons)
        kp_ok = _finite_rows(kp)[kp_rows]
    else:
        kp = np.empty((m, kc, 3), dtype=np.float64)
        cats = v.category_ids[persons]
        for c in cat_ids:
            rows, arr = v.keypoints[c]
            mine = np.flatnonzero(cats == c)
            kp[mine] = arr[np.searchsorted(rows, persons[mine])]
        kp_ok = _finite_rows(kp)
    img = v.image_ids[persons]
    known = np.fromiter(map(images.__contains__, img.tolist()), dtype=bool, count=m)
    return _pack(v.ids[persons], img, known, kp, kp_ok, v.bbox[persons], np.ones(m, dtype=bool), v.area[persons],
                 v.num_keypoints[persons].astype(np.int64), np.zeros(m, dtype=bool), dropped, crowd, images,
                 n_images, n, n_other, kp_rows)


def _finite_rows(kp: np.ndarray) -> np.ndarray:
    """(N,) mask of the rows of (N, Kc, 3) `kp` whose values are all finite, block by block (no
    whole-size boolean temporary)."""
    ok = np.empty(len(kp), dtype=bool)
    for e in blocks(len(kp)):
        ok[e] = np.isfinite(kp[e]).all(axis=(1, 2))
    return ok


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
