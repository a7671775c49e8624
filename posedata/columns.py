"""Columns of parsed JSON records, read and type-screened in C loops (map, set, np.fromiter).

A COCO-train-sized file has 150,000 annotation dicts; a Python call per record and field cost
seconds in validate. These helpers read one field of every record at once and tell, per record,
whether the value is of the plain shape the checks expect (an exact int, finite numbers of a
moderate size, a list of numbers of the right length). Records that are not are left to the
per-record code, which says exactly what is wrong; so a screen may be strict, never lenient.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain, compress, repeat
from typing import Any

import numpy as np

I64 = 2**63  # ids are stored as int64
EXACT = 2**53  # an int (or float) below this magnitude is a float64 exactly, and far inside float32's range


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # column()'s value for a record without the key


class NumberRows:
    """Rows of numbers parsed into one flat array (cocojson's parse of the annotations' keypoints):
    row i is values[start[i]:start[i] + length[i]], int32 or float64 values as json.loads's ints
    and floats convert to float64 (ints beyond float range: inf). Validate stacks a category's
    rows from here instead of from ~7.6M Python numbers at COCO-train size."""

    __slots__ = ("values", "start", "length", "width")

    def __init__(self, values: np.ndarray, length: np.ndarray) -> None:
        self.values, self.length = values, length
        self.start = np.zeros(len(length), dtype=np.int64)
        np.cumsum(length[:-1], out=self.start[1:])
        # every row of one length (COCO's 3K): rows are a (n, width) view, gathered without offsets
        self.width = int(length[0]) if len(length) and bool((length == length[0]).all()) else None

    def take(self, rows: np.ndarray, width: int, dtype: type = np.float64) -> np.ndarray:
        """(len(rows), width) array of the given rows, each of which has `width` numbers: float64,
        or `dtype` as `exact_dtype` names it (int32 rows stay int32, no float64 copy)."""
        m = len(rows)
        out = np.empty((m, width), dtype=dtype)
        grid = self.values.reshape(-1, width) if self.width == width else None
        if grid is not None and dtype == self.values.dtype:
            # mode="clip": take's default ("raise") writes into a whole-size copy of `out` first
            # (another 61 MB at 300k annotations); rows are the caller's valid row indices
            return np.take(grid, rows, axis=0, out=out, mode="clip")
        for lo in range(0, m, _BLOCK):  # int64 -> float64 block by block, never a whole-size temporary
            r = rows[lo:lo + _BLOCK]
            out[lo:lo + len(r)] = grid[r] if grid is not None else self.values[self.start[r][:, None] + np.arange(width)]
        return out

    @property
    def exact_dtype(self) -> type:
        """The narrowest dtype holding every value exactly: int32 for a column of ints of up to
        9 digits, else float64 (the values' float64, as json.loads's numbers convert to it)."""
        return np.int32 if self.values.dtype == np.int32 else np.float64


_BLOCK = 16384


class TypedRecords(list):
    """A list of records whose parser checked their field types while parsing (cocojson's typed
    parse of COCO annotations: ids, iscrowd and num_keypoints ints, area an int or float, bbox and
    keypoints lists of ints and floats). The screen then skips scanning those types again; it is
    made by that parser alone, and must not be changed afterwards.

    keypoints: every record's keypoints parsed as NumberRows, while each record's "keypoints"
    holds its raw JSON text (msgspec.Raw; cocojson.keypoint_lists turns the ones read one by one
    into lists). None (the column released, see convert_job): read the records' text."""

    __slots__ = ("keypoints",)

    def __init__(self, items: Iterable[Any] = (), keypoints: NumberRows | None = None) -> None:
        super().__init__(items)
        self.keypoints = keypoints


def column(records: list[dict[str, Any]], key: str) -> list[Any]:
    """record.get(key, MISSING) for every record (each must be a dict), looped in C."""
    return list(map(dict.get, records, repeat(key), repeat(MISSING)))


def int_column(values: list[Any], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, mask) where mask says the value is an exact int (not a bool) in [lo, hi);
    the other entries are 0."""
    n = len(values)
    if set(map(type, values)) == {int}:
        try:
            arr = np.array(values, dtype=np.int64).reshape(n)
        except OverflowError:  # beyond int64: sorted out one by one below
            pass
        else:
            ok = (arr >= lo) & (arr < hi) if lo > -I64 or hi < I64 else np.ones(n, dtype=bool)
            if not ok.all():
                arr[~ok] = 0
            return arr, ok
    ok = np.fromiter((type(v) is int and lo <= v < hi for v in values), dtype=bool, count=n)
    arr = np.zeros(n, dtype=np.int64)
    if ok.any():
        arr[ok] = np.fromiter(compress(values, ok), dtype=np.int64, count=int(ok.sum()))
    return arr, ok


def float_column(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, mask) where mask says the value is an int or float (not a bool) of
    magnitude below 2**53 (so NaN and infinities are out); the other entries are 0."""
    n = len(values)
    typed = set(map(type, values)) <= {int, float}
    ok = np.ones(n, dtype=bool) if typed else \
        np.fromiter(map({int, float}.__contains__, map(type, values)), dtype=bool, count=n)
    m = n if typed else int(ok.sum())
    try:
        vals = np.fromiter(compress(values, ok) if not typed else values, dtype=np.float64, count=m)
    except OverflowError:  # an int beyond float range: row by row
        vals = np.array([_float_or_nan(values[i]) for i in np.flatnonzero(ok).tolist()], dtype=np.float64).reshape(m)
    small = _small(vals)
    if m == n and small.all():  # the rule: no zeros, no copy and no row indices (fresh pages at COCO size)
        return vals, ok
    idx = np.flatnonzero(ok)
    out = np.zeros(n, dtype=np.float64)
    out[idx[small]] = vals[small]
    ok[idx[~small]] = False
    return out, ok


def typed_rows(rows: list[Any], width: int, typed: bool = False) -> np.ndarray:
    """Mask of the rows that are lists of exactly `width` ints or floats (no bools, strings, ...).
    typed: the rows are known to be lists of ints and floats (TypedRecords): only lengths are read."""
    n = len(rows)
    if typed:
        return np.fromiter(map(len, rows), dtype=np.int64, count=n) == width
    if set(map(type, rows)) <= {list}:
        ok = np.fromiter(map(len, rows), dtype=np.int64, count=n) == width
    else:
        ok = np.fromiter((type(r) is list and len(r) == width for r in rows), dtype=bool, count=n)
    good = rows if ok.all() else list(compress(rows, ok))
    if not set(map(type, chain.from_iterable(good))) <= {int, float}:
        idx = np.flatnonzero(ok)
        typed = np.fromiter((set(map(type, r)) <= {int, float} for r in good), dtype=bool, count=len(good))
        ok[idx[~typed]] = False
    return ok


def number_rows(rows: list[Any], width: int, typed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """((N, width) float64, mask): rows that are lists of exactly `width` ints or floats, each of
    magnitude below 2**53; the other rows are 0. typed: as in typed_rows."""
    n = len(rows)
    ok = typed_rows(rows, width, typed)
    idx = np.flatnonzero(ok)
    good = rows if len(idx) == n else list(compress(rows, ok))
    try:
        vals = np.fromiter(chain.from_iterable(good), dtype=np.float64, count=len(idx) * width).reshape(-1, width)
    except OverflowError:  # an int beyond float range: row by row
        vals = np.array([[_float_or_nan(v) for v in r] for r in good], dtype=np.float64).reshape(-1, width)
    small = _small(vals).all(axis=1)
    if len(idx) == n and small.all():  # the rule: no zeros and no copy (fresh pages at COCO size)
        return vals, ok
    out = np.zeros((n, width), dtype=np.float64)
    out[idx[small]] = vals[small]
    ok[idx[~small]] = False
    return out, ok


def dict_records(items: list[Any]) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The records a column can be read from (an empty dict in place of anything that is not
    exactly a dict) and the mask of the ones that were; the list itself when all of them are."""
    n = len(items)
    if set(map(type, items)) <= {dict}:
        return items, np.ones(n, dtype=bool)
    clean = np.fromiter((type(x) is dict for x in items), dtype=bool, count=n)
    return [x if c else {} for x, c in zip(items, clean.tolist())], clean


class ImageRows:
    """validate's image table: each image id's first image as (index, width, height), width and
    height NaN when unusable; arrays in image order (a dict of 114k ids, each with a tuple and
    two floats, plus its building lists, was ~50 MB of fresh pages at 300k annotations)."""

    __slots__ = ("_at", "_keys", "ids", "index", "wh")

    def __init__(self, index: np.ndarray, ids: np.ndarray, wh: np.ndarray) -> None:
        self.index, self.ids, self.wh = index, ids, wh  # (m,) int64, (m,) int64 unique, (m, 2) float64
        self._at = np.argsort(ids, kind="stable")
        self._keys = ids[self._at]

    @classmethod
    def merged(cls, index: np.ndarray, ids: np.ndarray, wh: np.ndarray,
               more: list[tuple[int, int, float, float]]) -> ImageRows:
        """The rows (index, ids, wh) and `more` rows (index, id, width, height), in index order."""
        if more:
            index = np.concatenate([index, np.array([r[0] for r in more], dtype=np.int64)])
            ids = np.concatenate([ids, np.array([r[1] for r in more], dtype=np.int64)])
            wh = np.concatenate([wh, np.array([r[2:] for r in more], dtype=np.float64).reshape(-1, 2)])
            order = np.argsort(index, kind="stable")
            index, ids, wh = index[order], ids[order], wh[order]
        return cls(index, ids, wh)

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, iid: int) -> tuple[int, float, float] | None:
        """(index, width, height) of image id `iid` (an int in int64 range), None when no image has it."""
        j = int(np.searchsorted(self._keys, iid))
        if j == len(self._keys) or int(self._keys[j]) != iid:
            return None
        p = int(self._at[j])
        return int(self.index[p]), float(self.wh[p, 0]), float(self.wh[p, 1])

    def by_id(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids sorted, their (width, height)), for np.searchsorted."""
        return self._keys, self.wh[self._at]


def screen_images(imgs: list[Any], as_id: Callable[[Any], int | None]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[Any, int], dict[str, int]]:
    """validate's screen of the images list: the mask of the images its per-image checks would
    pass without a finding (an exact-int id and a file name not used before, positive exact-int
    sizes), their ids and (width, height), and the first index of every id (as `as_id` reads
    ids) and of every non-empty file name, for the images checked one by one."""
    n = len(imgs)
    recs, clean = dict_records(imgs)
    values = column(recs, "id")
    ids, ok = int_column(values, -I64, I64)
    clean &= ok
    aids = values if ok.all() else [None if v is MISSING else as_id(v) for v in values]
    order = range(n - 1, -1, -1)
    first_image = dict(zip(map(aids.__getitem__, order), order))
    clean &= np.fromiter(map(first_image.__getitem__, aids), dtype=np.int64, count=n) == np.arange(n)
    names = column(recs, "file_name")
    named = np.fromiter((type(f) is str and f != "" for f in names), dtype=bool, count=n)
    idx = np.flatnonzero(named)[::-1].tolist()
    first_name = dict(zip(map(names.__getitem__, idx), idx))
    clean &= named
    rows = np.flatnonzero(clean)
    clean[rows] = np.fromiter(map(first_name.__getitem__, map(names.__getitem__, rows.tolist())),
                              dtype=np.int64, count=len(rows)) == rows
    wh = np.empty((n, 2), dtype=np.float64)
    for j, key in enumerate(("width", "height")):
        v, ok = int_column(column(recs, key), 1, EXACT)
        clean &= ok
        wh[:, j] = v
    return clean, ids, wh, first_image, first_name


def _small(vals: np.ndarray) -> np.ndarray:
    """|vals| < 2**53 (NaN out), by two comparisons: no float64 temporary of np.abs."""
    small = vals < EXACT
    small &= vals > -EXACT
    return small


def _float_or_nan(v: Any) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("nan")
