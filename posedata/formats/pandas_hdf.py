"""A pandas DataFrame of numbers from an HDF5 file pandas wrote (`DataFrame.to_hdf`), read with
h5py and without running any pickle code.

pandas writes through PyTables in one of two layouts:
- "table" (`pandas_type` frame_table; DeepLabCut's `format="table"`): a compound dataset `table`
  with an `index` field and `values_block_N` fields. The column labels are group attributes that
  PyTables stores as protocol-0 pickles: `non_index_axes` = [(1, [column label, ...])] and
  `values_block_N_kind` = the labels of block N, each label a string or a tuple of strings.
- "fixed" (`pandas_type` frame; DeepLabCut's default): arrays `axis0*` (the columns),
  `axis1*` (the rows) and `blockN_items*` / `blockN_values`, an index stored either as one byte
  string array (`*_variety` regular) or as `*_levelI` value arrays and `*_labelI` code arrays
  (multi). No pickle is involved unless an index holds Python objects (then a VLArray).

Pickles are decoded by an unpickler whose find_class refuses every global: a list or tuple of
strings and numbers decodes, anything that would construct an object or call a function is
refused with a located InputError. Sizes are checked before anything is read.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

MAX_PICKLE_BYTES = 16 << 20  # column labels of a DLC table are a few kB
MAX_ARRAY_BYTES = 2 << 30


class _NoGlobals(pickle.Unpickler):
    """Decodes only pickles built from literals (lists, tuples, dicts, strings, numbers)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent id")


def literal_unpickle(raw: bytes, file: str, where: str) -> Any:
    """The value of a pickle of literals; InputError (naming the refused global) otherwise."""
    if len(raw) > MAX_PICKLE_BYTES:
        raise InputError(f"pickled attribute of {len(raw)} bytes (more than {MAX_PICKLE_BYTES})", file=file,
                         where=where)
    try:
        return _NoGlobals(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as e:
        raise InputError(f"refused: the pickled attribute names {e} (only lists, tuples and strings are decoded; "
                         "posedata never runs code from a pickle)", file=file, where=where) from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeDecodeError,
            OverflowError, MemoryError, RecursionError) as e:
        raise InputError(f"unreadable pickled attribute: {type(e).__name__}", file=file, where=where) from None


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, np.bytes_):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def _attr(node: Any, name: str, file: str, where: str, pickled: bool = False) -> Any:
    """A PyTables attribute: a plain HDF5 value as it is, or (pickled=True: the attributes PyTables
    stores as pickles, such as non_index_axes) decoded by the unpickler that refuses globals."""
    if name not in node.attrs:
        return None
    try:
        v = node.attrs[name]
    except (OSError, TypeError, ValueError) as e:
        raise InputError(f"unreadable attribute {name!r}: {e}", file=file, where=where) from None
    if isinstance(v, (bytes, np.bytes_)):
        if pickled:
            return literal_unpickle(bytes(v), file, f"{where}@{name}")
        return bytes(v).decode("utf-8", errors="replace")
    if pickled:
        raise InputError(f"expected attribute {name!r} to be a pickled list, got {type(v).__name__}", file=file,
                         where=f"{where}@{name}")
    return v


def _dataset(group: Any, name: str, file: str, where: str) -> np.ndarray:
    import h5py

    if name not in group:
        raise InputError(f"missing dataset {name!r}", file=file, where=where)
    ds = group[name]
    if not isinstance(ds, h5py.Dataset):
        raise InputError(f"{name!r} is not a dataset", file=file, where=where)
    cls = _text(ds.attrs.get("CLASS", b""))
    if cls == "VLARRAY" or ds.dtype.kind == "O":
        raise InputError(f"{name!r} holds pickled Python objects (a PyTables VLArray), which posedata does not "
                         "load; save the table again with string or numeric labels", file=file,
                         where=f"{where}/{name}")
    n = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize
    if n > MAX_ARRAY_BYTES:
        raise InputError(f"dataset {name!r} declares {n} bytes (more than {MAX_ARRAY_BYTES})", file=file,
                         where=f"{where}/{name}")
    try:
        return ds[()]
    except (OSError, TypeError, ValueError) as e:
        raise InputError(f"unreadable dataset {name!r}: {e}", file=file, where=f"{where}/{name}") from None


def _label(v: Any) -> tuple[str, ...]:
    return tuple(_text(x) for x in v) if isinstance(v, (tuple, list)) else (_text(v),)


def _index(group: Any, key: str, file: str, where: str) -> list[tuple[str, ...]]:
    """A fixed-format index (`key` = axis0, axis1 or blockN_items) as one tuple of strings per entry."""
    variety = _text(_attr(group, f"{key}_variety", file, where) or "regular")
    if variety == "regular":
        return [(_text(v),) for v in _dataset(group, key, file, where).ravel().tolist()]
    if variety != "multi":
        raise InputError(f"unsupported index variety {variety!r} for {key}", file=file, where=where)
    nlev = int(_attr(group, f"{key}_nlevels", file, where) or 0)
    if not 1 <= nlev <= 16:
        raise InputError(f"{key}_nlevels must be 1..16, got {nlev}", file=file, where=where)
    cols = []
    n = None
    for i in range(nlev):
        levels = [_text(v) for v in _dataset(group, f"{key}_level{i}", file, where).ravel().tolist()]
        codes = _dataset(group, f"{key}_label{i}", file, where).ravel().astype(np.int64)
        if n is None:
            n = len(codes)
        if len(codes) != n or (len(codes) and (codes.min() < -1 or codes.max() >= len(levels))):
            raise InputError(f"{key}_label{i} does not index {key}_level{i}", file=file, where=where)
        cols.append(["" if c < 0 else levels[c] for c in codes.tolist()])
    return [tuple(c[j] for c in cols) for j in range(n or 0)]


def read_frame(path: Path, key: str | None = None) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], np.ndarray]:
    """(column labels, row labels, values (rows, columns) float64) of the DataFrame stored under
    `key` when the file has it, else under the file's only top-level group."""
    try:
        import h5py
    except ImportError:
        raise InputError("reading .h5 needs h5py: pip install 'posedata[deeplabcut]'", file=str(path)) from None
    file = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"not a readable HDF5 file: {e}", file=file) from None
    with f:
        groups = [k for k in f if isinstance(f[k], h5py.Group)]
        if key not in groups:
            if len(groups) != 1:
                raise InputError(f"expected one DataFrame group in the file, found {groups}", file=file)
            key = groups[0]
        if key not in f or not isinstance(f[key], h5py.Group):
            raise InputError(f"no DataFrame group {key!r} (found {groups})", file=file)
        g = f[key]
        where = f"/{key}"
        kind = _text(_attr(g, "pandas_type", file, where) or "")
        if kind == "frame_table":
            return _read_table(g, file, where)
        if kind == "frame":
            return _read_fixed(g, file, where)
        raise InputError(f"not a pandas DataFrame (pandas_type {kind!r}, expected 'frame' or 'frame_table')",
                         file=file, where=where)


def _read_fixed(g: Any, file: str, where: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], np.ndarray]:
    columns = _index(g, "axis0", file, where)
    rows = _index(g, "axis1", file, where)
    nblocks = int(_attr(g, "nblocks", file, where) or 0)
    pos = {c: j for j, c in enumerate(columns)}
    out = np.full((len(rows), len(columns)), np.nan)
    for b in range(nblocks):
        items = _index(g, f"block{b}_items", file, where)
        vals = _dataset(g, f"block{b}_values", file, where)
        if vals.dtype.kind not in "fiu":
            continue  # a block of text or objects is no coordinate
        vals = np.asarray(vals, dtype=np.float64)
        if vals.shape == (len(items), len(rows)) and vals.shape != (len(rows), len(items)):
            vals = vals.T
        if vals.shape != (len(rows), len(items)):
            raise InputError(f"block{b}_values has shape {vals.shape}, expected {(len(rows), len(items))}",
                             file=file, where=f"{where}/block{b}_values")
        for j, it in enumerate(items):
            if it not in pos:
                raise InputError(f"block{b}_items names a column {it} that axis0 lacks", file=file, where=where)
            out[:, pos[it]] = vals[:, j]
    return columns, rows, out


def _read_table(g: Any, file: str, where: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], np.ndarray]:
    axes = _attr(g, "non_index_axes", file, where, pickled=True)
    if not (isinstance(axes, list) and len(axes) == 1 and isinstance(axes[0], tuple) and len(axes[0]) == 2
            and isinstance(axes[0][1], list)):
        raise InputError("expected non_index_axes [(1, [column labels])]", file=file, where=f"{where}@non_index_axes")
    columns = [_label(c) for c in axes[0][1]]
    values_cols = _attr(g, "values_cols", file, where, pickled=True) or []
    if not isinstance(values_cols, list):
        raise InputError("expected values_cols to be a list of block names", file=file, where=f"{where}@values_cols")
    t = _dataset(g, "table", file, where)
    if t.dtype.names is None or "index" not in t.dtype.names:
        raise InputError("expected a table with an 'index' field", file=file, where=f"{where}/table")
    rows = [(_text(v),) for v in t["index"].tolist()]
    tnode = g["table"]
    pos = {c: j for j, c in enumerate(columns)}
    out = np.full((len(rows), len(columns)), np.nan)
    for name in values_cols:
        name = _text(name)
        if name not in t.dtype.names:
            raise InputError(f"values block {name!r} is not a field of the table", file=file, where=f"{where}/table")
        kinds = _attr(tnode, f"{name}_kind", file, f"{where}/table", pickled=True)
        if not isinstance(kinds, list):
            raise InputError(f"expected {name}_kind to list the block's columns", file=file, where=f"{where}/table")
        block = t[name]
        if block.dtype.kind not in "fiu":
            continue
        block = np.asarray(block, dtype=np.float64).reshape(len(rows), -1)
        if block.shape[1] != len(kinds):
            raise InputError(f"{name} has {block.shape[1]} columns, its labels {len(kinds)}", file=file,
                             where=f"{where}/table")
        for j, k in enumerate(kinds):
            lab = _label(k)
            if lab not in pos:
                raise InputError(f"{name} names a column {lab} that non_index_axes lacks", file=file, where=where)
            out[:, pos[lab]] = block[:, j]
    return columns, rows, out
